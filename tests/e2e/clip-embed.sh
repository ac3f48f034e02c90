#!/bin/bash
# clip-embed end to end: image and text embeddings, similarities, zero-shot classes and the
# alignment/uniformity report of a tiny CLIP model in the hub's layout, against PyTorch
# (tests/data/clip-embed/make-fixtures.py); a ViT-B/32-shaped model made here against
# PyTorch; bfloat16 products; sharded runs; determinism; every error path.
source "$(dirname "$0")/lib.sh"
d=tests/data/clip-embed
m=$d/tiny-clip
close() { tests/e2e/close-npy "$@"; }
mapfile -t images <$d/images.txt

# --- Against PyTorch (1e-4) ------------------------------------------------------------------
expect_success "image files" clip-embed --model $m --images "${images[@]}" -o "$work/images.npy"
expect_success "image files agree" close $d/images.npy "$work/images.npy"
expect_success "--files-from" clip-embed --model $m --files-from $d/images.txt -o "$work/listed.npy"
expect_same "--files-from: the same embeddings" "$work/images.npy" "$work/listed.npy"
expect_success "patches" clip-embed --model $m --patches $d/patches.npy -o "$work/patches.npy"
expect_success "patches agree" close $d/images.npy "$work/patches.npy"
expect_success "vit-patchify | clip-embed --patches -" bash -c "vit-patchify --patch 8 --resize 32 --crop 32 ${images[*]} | clip-embed --model $m --patches - >$work/piped.npy"
expect_success "vit-patchify | clip-embed --patches -: agree" close $d/images.npy "$work/piped.npy"
expect_success "captions" clip-embed --model $m --text $d/captions.txt -o "$work/texts.npy"
expect_success "captions agree (lower case, truncation, an empty caption)" close $d/texts.npy "$work/texts.npy"
expect_success "captions on standard input" bash -c "clip-embed --model $m --text - <$d/captions.txt >$work/stdin-texts.npy"
expect_same "captions on standard input: the same" "$work/texts.npy" "$work/stdin-texts.npy"
expect_success "token ids" clip-embed --model $m --ids $d/ids.npy -o "$work/ids.npy"
expect_same "token ids: the same as captions" "$work/texts.npy" "$work/ids.npy"
head -n 5 $d/captions.txt >"$work/short-captions.txt"  # none longer than the context
expect_success "short captions" clip-embed --model $m --text "$work/short-captions.txt" -o "$work/short.npy"
expect_success "bpe-encode | clip-embed --ids" bash -c "bpe-encode --tokenizer $m --pattern clip --bos '<|startoftext|>' --eos '<|endoftext|>' --pad-to 16 --pad-id '<|endoftext|>' --format npy $work/short-captions.txt >$work/encoded.npy && clip-embed --model $m --ids $work/encoded.npy -o $work/encoded-texts.npy"
expect_same "bpe-encode's ids: the same embeddings" "$work/short.npy" "$work/encoded-texts.npy"
expect_success "--tokenizer" clip-embed --model $m/model.safetensors --tokenizer tests/data/bpe/clip --text $d/captions.txt -o "$work/named.npy"
expect_success "--similarity" clip-embed --model $m --files-from $d/images.txt --text $d/captions.txt --similarity -o "$work/similarity.npy"
expect_success "--similarity agrees" close $d/similarity.npy "$work/similarity.npy"
expect_success "--zeroshot, two templates" clip-embed --model $m --files-from $d/images.txt --zeroshot $d/classes.txt --template 'a photo of a {}.' --template 'a drawing of a {}.' -o "$work/zeroshot.tsv"
expect_success "--zeroshot agrees (labels, probabilities)" tests/e2e/close-tsv $d/zeroshot.tsv "$work/zeroshot.tsv"
expect_success "--report" clip-embed --model $m --files-from $d/images.txt --text $d/captions.txt --report -o "$work/report.tsv"
expect_success "--report agrees" tests/e2e/close-tsv $d/report.tsv "$work/report.tsv"

# --- The hub's layout as openai/clip-vit-base-patch32 has it loads unchanged (legacy token
# ids: the end token is the largest id; position_ids buffers; more tokenizer files) -------------
/usr/bin/python3 $d/make-fixtures.py hub-layout $m "$work/hub"
expect_success "hub layout: images" clip-embed --model "$work/hub" --files-from $d/images.txt -o "$work/hub-images.npy"
expect_same "hub layout: the same image embeddings" "$work/images.npy" "$work/hub-images.npy"
expect_success "hub layout: captions" clip-embed --model "$work/hub" --text $d/captions.txt -o "$work/hub-texts.npy"
expect_same "hub layout: the same caption embeddings" "$work/texts.npy" "$work/hub-texts.npy"

# --- --top 1 is GLUE's submission format: glue-eval scores it --------------------------------
awk -F'\t' 'NR == 1 { print "index\tprediction"; next } { print $1 "\t" $2 }' $d/zeroshot.tsv >"$work/top1.expected"
expect_output "--top 1: index<TAB>prediction" "$work/top1.expected" clip-embed --model $m --files-from $d/images.txt --zeroshot $d/classes.txt --template 'a photo of a {}.' --template 'a drawing of a {}.' --top 1
printf 'cat\ndog\ntree\ncat\ncat\ncat\n' >"$work/gold.txt"
expected=$(awk -F'\t' 'NR == FNR { gold[NR - 1] = $1; next } FNR > 1 { n++; if (gold[$1] == $2) right++ } END { printf "acc\t%.6f\n", right / n }' "$work/gold.txt" "$work/top1.expected")
echo "$expected" >"$work/acc.expected"
expect_output "glue-eval scores --top 1" "$work/acc.expected" bash -c "clip-embed --model $m --files-from $d/images.txt --zeroshot $d/classes.txt --template 'a photo of a {}.' --template 'a drawing of a {}.' --top 1 | glue-eval --metric acc --pred-column prediction $work/gold.txt -"

# --- A ViT-B/32-shaped model, made here (not committed), against PyTorch ------------------------
model-init --arch clip --preset clip-vit-b-32 --seed 5 -o "$work/b32.safetensors"
vit-patchify --patch 32 --resize 224 --crop 224 -o "$work/b32-patches.npy" "${images[0]}" "${images[1]}"
/usr/bin/python3 -c "import numpy as np; np.save('$work/b32-ids.npy', np.array([[49406, 320, 1125, 539, 320, 2368, 49407] + [49407] * 70, [49406] + list(range(300, 375)) + [49407]], np.int32))"
expect_success "ViT-B/32 shape: images" clip-embed --model "$work/b32.safetensors" --patches "$work/b32-patches.npy" -o "$work/b32-images.npy"
expect_success "ViT-B/32 shape: texts" clip-embed --model "$work/b32.safetensors" --ids "$work/b32-ids.npy" -o "$work/b32-texts.npy"
expect_success "ViT-B/32 shape: agree with PyTorch" /usr/bin/python3 $d/make-fixtures.py check "$work/b32.safetensors" "$work/b32-patches.npy" "$work/b32-ids.npy" "$work/b32-images.npy" "$work/b32-texts.npy"

# --- bfloat16 products: within cosine 0.999 of float32 (float32 where the CPU cannot) ----------
# bf16 opens oneDNN, whose dynamic TLS crashes the LeakSanitizer of gcc 12 at exit (a sanitizer
# bug: "Tracer caught signal 11"): under `make check SANITIZE=1` these runs go without leak checks.
bf16() { ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 clip-embed --precision bf16 "$@"; }
if bf16 --model "$work/b32.safetensors" --patches "$work/b32-patches.npy" -o "$work/b32-bf16.npy" 2>"$work/bf16.stderr"; then
    pass
else
    fail "bf16: images" "$(cat "$work/bf16.stderr")"
fi
cosines() { /usr/bin/python3 -c "import numpy as np, sys; a, b = np.load(sys.argv[1]), np.load(sys.argv[2]); c = (a * b).sum(1); print(c.min()); sys.exit(0 if c.min() >= 0.999 else 1)" "$@"; }
if cosines "$work/b32-images.npy" "$work/b32-bf16.npy" >"$work/cosine"; then pass; else fail "bf16: every image embedding within cosine 0.999 of float32" "$(cat "$work/cosine")"; fi
expect_success "bf16: texts" bf16 -q --model "$work/b32.safetensors" --ids "$work/b32-ids.npy" -o "$work/b32-bf16-texts.npy"
if cosines "$work/b32-texts.npy" "$work/b32-bf16-texts.npy" >"$work/cosine"; then pass; else fail "bf16: every text embedding within cosine 0.999 of float32" "$(cat "$work/cosine")"; fi
if grep -q . "$work/bf16.stderr" && ! grep -q "AVX512-BF16\|oneDNN" "$work/bf16.stderr"; then fail "bf16: only a fallback warning" "$(cat "$work/bf16.stderr")"; else pass; fi
rm -f "$work"/b32.safetensors

# --- Batches, threads, shards ----------------------------------------------------------------
expect_success "the same run twice" clip-embed --model $m --files-from $d/images.txt -o "$work/again.npy"
expect_same "the same run twice: the same bytes" "$work/images.npy" "$work/again.npy"
expect_success "batches of 4, 1 thread" clip-embed --model $m --files-from $d/images.txt --batch-size 4 --threads 1 -o "$work/batched.npy"
expect_success "batches of 4, 1 thread: agree" close "$work/images.npy" "$work/batched.npy" 1e-6
for i in $(seq 5); do cat $d/images.txt; done >"$work/all.txt"
split -d -l 10 "$work/all.txt" "$work/part."  # shards of a multiple of the batch size
expect_success "shards with xargs -P" bash -c "ls $work/part.* | xargs -P 3 -I{} clip-embed --model $m --threads 1 --batch-size 5 --files-from {} -o {}.npy"
expect_success "one run" clip-embed --model $m --threads 1 --batch-size 5 --files-from "$work/all.txt" -o "$work/whole.npy"
expect_success "--concatenate the shards" clip-embed --concatenate -o "$work/joined.npy" "$work"/part.0?.npy
expect_same "shards concatenated = one run" "$work/whole.npy" "$work/joined.npy"

# --- Errors -----------------------------------------------------------------------------------
mkdir -p "$work/no-tokenizer"
cp $m/model.safetensors $m/config.json "$work/no-tokenizer/"
printf 'not an image' >"$work/bad.jpg"
printf 'cat\ndog\ncat\n' >"$work/twice.txt"
/usr/bin/python3 - "$work" <<'PY'
import numpy as np, sys
w = sys.argv[1]
np.save(f"{w}/wrong-patches.npy", np.zeros((2, 9, 192), np.float32))
p = np.load("tests/data/clip-embed/patches.npy"); p[1, 3, 5] = np.nan
np.save(f"{w}/nan-patches.npy", p)
np.save(f"{w}/big-ids.npy", np.array([[1200, 5000, 1201]], np.int32))
np.save(f"{w}/float-ids.npy", np.zeros((2, 3), np.float32))
PY
head -c 3000 $d/patches.npy >"$work/truncated.npy"
expect_failure "model missing" 1 "/absent: No such file or directory" clip-embed --model "$work/absent" --text $d/captions.txt -o "$work/out.npy"
expect_no_file "model missing: no output" "$work/out.npy"
expect_failure "not a clip model" 1 "vit.safetensors: holds a vit model; clip-embed needs a clip model" clip-embed --model tests/data/nn/vit.safetensors --patches $d/patches.npy -o "$work/out.npy"
expect_failure "an image that does not decode" 1 "bad.jpg: " clip-embed --model $m --images "${images[0]}" "$work/bad.jpg" -o "$work/out.npy"
expect_no_file "an image that does not decode: no output" "$work/out.npy"
expect_failure "an image missing" 1 "/absent.jpg: No such file or directory" clip-embed --model $m --images "$work/absent.jpg" -o "$work/out.npy"
expect_failure "patches of the wrong shape" 1 "wrong-patches.npy: patches of shape \(9, 192\), the model takes \(16, 192\)" clip-embed --model $m --patches "$work/wrong-patches.npy" -o "$work/out.npy"
expect_failure "patches with a NaN" 1 "nan-patches.npy: row 1 holds a NaN" clip-embed --model $m --patches "$work/nan-patches.npy" -o "$work/out.npy"
expect_no_file "patches with a NaN: no output" "$work/out.npy"
expect_failure "truncated patches" 1 "truncated.npy: truncated" clip-embed --model $m --patches "$work/truncated.npy" -o "$work/out.npy"
expect_failure "token ids beyond the vocabulary" 1 "big-ids.npy: .*5000" clip-embed --model $m --ids "$work/big-ids.npy" -o "$work/out.npy"
expect_failure "token ids as floats" 1 "float-ids.npy: token ids must be an integer array" clip-embed --model $m --ids "$work/float-ids.npy" -o "$work/out.npy"
expect_failure "captions missing" 1 "/absent.txt: No such file or directory" clip-embed --model $m --text "$work/absent.txt" -o "$work/out.npy"
expect_failure "no captions" 1 "no captions" clip-embed --model $m --text /dev/null -o "$work/out.npy"
expect_failure "no tokenizer beside the model" 2 "no tokenizer beside" clip-embed --model "$work/no-tokenizer" --text $d/captions.txt -o "$work/out.npy"
expect_failure "a class named twice" 1 "twice.txt:3: class 'cat' is named twice" clip-embed --model $m --patches $d/patches.npy --zeroshot "$work/twice.txt" -o "$work/out.tsv"
expect_no_file "a class named twice: no output" "$work/out.tsv"
expect_failure "no classes" 1 "no class names" clip-embed --model $m --patches $d/patches.npy --zeroshot /dev/null -o "$work/out.tsv"
expect_failure "--report: unpaired" 1 "6 images, 4 texts" clip-embed --model $m --patches $d/patches.npy --ids tests/data/nn/clip.ids.npy --report -o "$work/out.tsv"
expect_failure "--concatenate: different rows" 1 "texts.npy: holds <f4 rows of shape \(16\), but .*similarity.npy holds <f4 rows of shape \(6\)" clip-embed --concatenate -o "$work/out.npy" $d/similarity.npy $d/texts.npy
expect_no_file "--concatenate: no output" "$work/out.npy"
expect_failure "--model required" 2 "--model is required" clip-embed --text $d/captions.txt
expect_failure "nothing to embed" 2 "nothing to embed" clip-embed --model $m
expect_failure "images and texts without a question" 2 "--similarity or --report" clip-embed --model $m --patches $d/patches.npy --text $d/captions.txt
expect_failure "--similarity without texts" 2 "--similarity needs images and texts" clip-embed --model $m --patches $d/patches.npy --similarity
expect_failure "--zeroshot with texts" 2 "--zeroshot takes images only" clip-embed --model $m --patches $d/patches.npy --zeroshot $d/classes.txt --text $d/captions.txt
expect_failure "--zeroshot without images" 2 "--zeroshot classifies images" clip-embed --model $m --zeroshot $d/classes.txt
expect_failure "--template without --zeroshot" 2 "--template and --top go with --zeroshot" clip-embed --model $m --patches $d/patches.npy --template 'a {}'
expect_failure "a template without {}" 2 "has no \{\}" clip-embed --model $m --patches $d/patches.npy --zeroshot $d/classes.txt --template 'a photo'
expect_failure "--text and --ids" 2 "choose one" clip-embed --model $m --text $d/captions.txt --ids $d/ids.npy
expect_failure "--patches and --images" 2 "--patches replaces" clip-embed --model $m --patches $d/patches.npy --images "${images[0]}"
expect_failure "two inputs on standard input" 2 "standard input can feed one input only" clip-embed --model $m --patches - --text - --similarity
expect_failure "--precision" 2 "--precision fp8: float32 or bf16" clip-embed --model $m --patches $d/patches.npy --precision fp8
expect_failure "--batch-size 0" 2 "--batch-size must be at least 1" clip-embed --model $m --patches $d/patches.npy --batch-size 0
expect_failure "operands without --concatenate" 2 "operands are the files of --concatenate" clip-embed --model $m $d/patches.npy
expect_failure "--concatenate without files" 2 "name them" clip-embed --concatenate -o "$work/out.npy"

finish
