#!/bin/bash
# lora-predict with several adapters in one batch (--adapter NAME=DIR --route FILE): every
# row's prediction equals that of a run on a model with the row's adapter merged into it by
# lora-merge (to 1e-5), for a GPT-2 language model (logits, generation), a GPT-2 classifier
# (adapters with score heads of their own), a ViT classifier and CLIP's two towers, with
# adapters on different modules with different ranks (tests/data/nn/make-route-adapters.py);
# batches of several sizes; and every error path.
source "$(dirname "$0")/lib.sh"
d=tests/data/nn
a=$work/adapters
/usr/bin/python3 $d/make-route-adapters.py "$a"
close() { tests/e2e/close-npy "$@"; }

# Inputs of 11 rows: token ids right-padded with 0, patches; and route files.
/usr/bin/python3 - "$work" <<'PY'
import array, os, random, struct, sys
work = sys.argv[1]
generator = random.Random(5)
def npy(name, descr, shape, values):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, repr(tuple(shape)))
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    with open(os.path.join(work, name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(array.array("i" if descr == "<i4" else "f", values).tobytes())
def ids(name, rows, time, vocab, eos=None):
    values = []
    for _ in range(rows):
        length = generator.randint(2, time - 4)
        row = [generator.randint(1, vocab - 2) for _ in range(length)]
        if eos is not None:
            row[-1] = eos
        values += row + [0] * (time - length)
    npy(name, "<i4", (rows, time), values)
ids("lm.npy", 11, 12, 95)
ids("classify.npy", 11, 12, 95)
ids("clip-text.npy", 11, 12, 63, eos=63)
npy("vit.npy", "<f4", (11, 16, 48), [generator.gauss(0, 1) for _ in range(11 * 16 * 48)])
npy("clip-image.npy", "<f4", (11, 4, 192), [generator.gauss(0, 1) for _ in range(11 * 4 * 192)])
PY
printf '%s\n' attn mlp - proj attn attn mlp proj - mlp attn >"$work/lm.routes"
printf '%s\n' head-a lora head-b head-b - head-a lora head-a head-b lora - >"$work/classify.routes"
printf '%s\n' qv mlp qv - mlp mlp qv - qv mlp qv >"$work/vit.routes"
printf '%s\n' text both - both text text both - both text both >"$work/clip.routes"

# merged MODEL NAME ADAPTER...: the model with the adapters merged, $work/NAME.safetensors
merged() {
    local model=$1 name=$2
    shift 2
    lora-merge "$model" "$@" -o "$work/$name.safetensors" || fail "lora-merge $name"
}
# reference OUT ROUTES FORMAT INPUT NAME=MODEL...: each row as the run of its row's model writes it
reference() {
    local out=$1 routes=$2 format=$3 input=$4 picks=()
    shift 4
    for named in "$@"; do
        lora-predict --model "${named#*=}" $format -o "$work/single-${named%%=*}" "$input" || fail "lora-predict ${named#*=}"
        picks+=("${named%%=*}=$work/single-${named%%=*}")
    done
    tests/e2e/pick-rows "$routes" "$out" "${picks[@]}" || fail "pick-rows $out"
}

# --- A GPT-2 language model: the fused q/k/v (r 4), the MLP (r 2, rsLoRA), one projection of
# one layer (r 8); rows with no adapter ----------------------------------------------------------
merged $d/gpt2-lm.safetensors lm-attn $a/lm-attn
merged $d/gpt2-lm.safetensors lm-mlp $a/lm-mlp
merged $d/gpt2-lm.safetensors lm-proj $a/lm-proj
lm_routes=(--adapter attn=$a/lm-attn --adapter mlp=$a/lm-mlp --adapter proj=$a/lm-proj --route "$work/lm.routes")
reference "$work/lm-expected.npy" "$work/lm.routes" "--pad-id 0" "$work/lm.npy" attn="$work/lm-attn.safetensors" \
    mlp="$work/lm-mlp.safetensors" proj="$work/lm-proj.safetensors" -=$d/gpt2-lm.safetensors
for batch in 32 4 1; do
    expect_success "LM logits, batches of $batch" lora-predict --model $d/gpt2-lm.safetensors "${lm_routes[@]}" --pad-id 0 --batch-size $batch -o "$work/lm-$batch.npy" "$work/lm.npy"
    expect_success "LM logits, batches of $batch: each row as its merged model's" close "$work/lm-expected.npy" "$work/lm-$batch.npy" 1e-5
done
expect_success "the same run twice" lora-predict --model $d/gpt2-lm.safetensors "${lm_routes[@]}" --pad-id 0 --batch-size 4 -o "$work/lm-again.npy" "$work/lm.npy"
expect_same "the same run twice: the same bytes" "$work/lm-4.npy" "$work/lm-again.npy"

# An adapter for every row (unnamed) under the routed ones: the sum, as lora-merge makes it.
merged $d/gpt2-lm.safetensors lm-proj-attn $a/lm-proj $a/lm-attn
merged $d/gpt2-lm.safetensors lm-proj-mlp $a/lm-proj $a/lm-mlp
printf '%s\n' attn mlp - mlp attn attn - mlp mlp attn attn >"$work/shared.routes"
reference "$work/shared-expected.npy" "$work/shared.routes" "--pad-id 0" "$work/lm.npy" attn="$work/lm-proj-attn.safetensors" \
    mlp="$work/lm-proj-mlp.safetensors" -="$work/lm-proj.safetensors"
expect_success "an adapter for every row and routed ones" lora-predict --model $d/gpt2-lm.safetensors --adapter $a/lm-proj --adapter attn=$a/lm-attn --adapter mlp=$a/lm-mlp --route "$work/shared.routes" --pad-id 0 --batch-size 5 -o "$work/shared.npy" "$work/lm.npy"
expect_success "an adapter for every row and routed ones: agree" close "$work/shared-expected.npy" "$work/shared.npy" 1e-5

# Generation: each row decodes with its own adapter, greedy and sampled (each row its own
# random stream, whatever the batch).
reference "$work/greedy-expected" "$work/lm.routes" "--pad-id 0 --generate 4" "$work/lm.npy" attn="$work/lm-attn.safetensors" \
    mlp="$work/lm-mlp.safetensors" proj="$work/lm-proj.safetensors" -=$d/gpt2-lm.safetensors
expect_output "greedy generation" "$work/greedy-expected" lora-predict --model $d/gpt2-lm.safetensors "${lm_routes[@]}" --pad-id 0 --batch-size 4 --generate 4 "$work/lm.npy"
sampling="--pad-id 0 --generate 4 --top-k 8 --temperature 1.5 --seed 9"
reference "$work/sampled-expected" "$work/lm.routes" "$sampling" "$work/lm.npy" attn="$work/lm-attn.safetensors" \
    mlp="$work/lm-mlp.safetensors" proj="$work/lm-proj.safetensors" -=$d/gpt2-lm.safetensors
expect_output "sampled generation" "$work/sampled-expected" lora-predict --model $d/gpt2-lm.safetensors "${lm_routes[@]}" $sampling --batch-size 3 "$work/lm.npy"

# --- A GPT-2 classifier: two adapters with score heads of their own (one with LoRA on wte too),
# one LoRA only -----------------------------------------------------------------------------------
merged $d/gpt2-classify.safetensors classify-a $a/classify-attn
merged $d/gpt2-classify.safetensors classify-b $a/classify-mlp
merged $d/gpt2-classify.safetensors classify-lora $a/classify-lora
classify_routes=(--adapter head-a=$a/classify-attn --adapter head-b=$a/classify-mlp --adapter lora=$a/classify-lora --route "$work/classify.routes")
reference "$work/classify-expected.npy" "$work/classify.routes" "--format logits" "$work/classify.npy" head-a="$work/classify-a.safetensors" \
    head-b="$work/classify-b.safetensors" lora="$work/classify-lora.safetensors" -=$d/gpt2-classify.safetensors
expect_success "classifier logits" lora-predict --model $d/gpt2-classify.safetensors "${classify_routes[@]}" --format logits --batch-size 4 -o "$work/classify.npy.out" "$work/classify.npy"
mv "$work/classify.npy.out" "$work/classify-routed.npy"
expect_success "classifier logits: each row as its merged model's" close "$work/classify-expected.npy" "$work/classify-routed.npy" 1e-5
reference "$work/classify-expected.tsv" "$work/classify.routes" "" "$work/classify.npy" head-a="$work/classify-a.safetensors" \
    head-b="$work/classify-b.safetensors" lora="$work/classify-lora.safetensors" -=$d/gpt2-classify.safetensors
sed -i 's/^[0-9]*\t//' "$work/classify-expected.tsv"
lora-predict --model $d/gpt2-classify.safetensors "${classify_routes[@]}" "$work/classify.npy" | sed 's/^[0-9]*\t//' >"$work/classify-labels"
expect_same "classifier labels" "$work/classify-expected.tsv" "$work/classify-labels"

# --- A ViT classifier: q and v (r 4) with a classifier head of its own; the MLP and the output
# projection (r 2) -------------------------------------------------------------------------------
merged $d/vit.safetensors vit-qv $a/vit-qv
merged $d/vit.safetensors vit-mlp $a/vit-mlp
reference "$work/vit-expected.npy" "$work/vit.routes" "--format logits" "$work/vit.npy" qv="$work/vit-qv.safetensors" \
    mlp="$work/vit-mlp.safetensors" -=$d/vit.safetensors
expect_success "vit logits" lora-predict --model $d/vit.safetensors --adapter qv=$a/vit-qv --adapter mlp=$a/vit-mlp --route "$work/vit.routes" --format logits --batch-size 5 -o "$work/vit-routed.npy" "$work/vit.npy"
expect_success "vit logits: each row as its merged model's" close "$work/vit-expected.npy" "$work/vit-routed.npy" 1e-5

# --- CLIP: one adapter on the text tower (r 2, its token embedding too), one on both towers (r 5) -
merged $d/clip.safetensors clip-text $a/clip-text
merged $d/clip.safetensors clip-both $a/clip-both
clip_routes=(--adapter text=$a/clip-text --adapter both=$a/clip-both --route "$work/clip.routes")
for input in text image; do
    reference "$work/clip-$input-expected.npy" "$work/clip.routes" "" "$work/clip-$input.npy" text="$work/clip-text.safetensors" \
        both="$work/clip-both.safetensors" -=$d/clip.safetensors
    expect_success "clip $input embeddings" lora-predict --model $d/clip.safetensors "${clip_routes[@]}" --batch-size 4 -o "$work/clip-$input-routed.npy" "$work/clip-$input.npy"
    expect_success "clip $input embeddings: each row as its merged model's" close "$work/clip-$input-expected.npy" "$work/clip-$input-routed.npy" 1e-5
done

# --- Routes from standard input; CRLF and spaces around names ------------------------------------
expect_success "routes on standard input" bash -c "lora-predict --model $d/vit.safetensors --adapter qv=$a/vit-qv --adapter mlp=$a/vit-mlp --route - --format logits --batch-size 5 -o '$work/vit-stdin.npy' '$work/vit.npy' <'$work/vit.routes'"
expect_same "routes on standard input: the same" "$work/vit-routed.npy" "$work/vit-stdin.npy"
sed 's/^\(.*\)$/  \1 \r/' "$work/vit.routes" >"$work/vit-crlf.routes"
expect_success "CRLF route file" lora-predict --model $d/vit.safetensors --adapter qv=$a/vit-qv --adapter mlp=$a/vit-mlp --route "$work/vit-crlf.routes" --format logits --batch-size 5 -o "$work/vit-crlf.npy" "$work/vit.npy"
expect_same "CRLF route file: the same" "$work/vit-routed.npy" "$work/vit-crlf.npy"

# --- Errors ---------------------------------------------------------------------------------------
vit_named=(--adapter qv=$a/vit-qv --adapter mlp=$a/vit-mlp)
sed '3s/.*/qk/' "$work/vit.routes" >"$work/unknown.routes"
expect_failure "unknown adapter name" 1 "/unknown.routes:3: no adapter named 'qk' \(the adapters: qv, mlp; '-' for none\)" lora-predict --model $d/vit.safetensors "${vit_named[@]}" --route "$work/unknown.routes" -o "$work/out.npy" "$work/vit.npy"
head -n 10 "$work/vit.routes" >"$work/short.routes"
expect_failure "fewer routes than rows" 1 "/short.routes: 10 routes for 11 input rows" lora-predict --model $d/vit.safetensors "${vit_named[@]}" --route "$work/short.routes" -o "$work/out.npy" "$work/vit.npy"
{ cat "$work/vit.routes"; echo qv; } >"$work/long.routes"
expect_failure "more routes than rows" 1 "/long.routes: 12 routes for 11 input rows" lora-predict --model $d/vit.safetensors "${vit_named[@]}" --route "$work/long.routes" -o "$work/out.npy" "$work/vit.npy"
sed '5s/.*//' "$work/vit.routes" >"$work/blank.routes"
expect_failure "an empty line" 1 "/blank.routes:5: an empty line" lora-predict --model $d/vit.safetensors "${vit_named[@]}" --route "$work/blank.routes" -o "$work/out.npy" "$work/vit.npy"
expect_failure "route file missing" 1 "/absent.routes: No such file or directory" lora-predict --model $d/vit.safetensors "${vit_named[@]}" --route "$work/absent.routes" -o "$work/out.npy" "$work/vit.npy"
expect_failure "an adapter for another model" 1 "lm-attn: module 'transformer.h.0.attn.c_attn': not a linear layer of the model" lora-predict --model $d/vit.safetensors --adapter qv=$a/vit-qv --adapter mlp=$a/lm-attn --route "$work/vit.routes" -o "$work/out.npy" "$work/vit.npy"
expect_failure "a head of another shape" 1 "classify-attn/adapter_model.safetensors: tensor 'base_model.model.score.weight' has shape \[3, 32\], the model's 'score.weight' is \[1, 32\]" lora-predict --model $d/gpt2-regress.safetensors --adapter a=$a/classify-attn --route "$work/vit.routes" -o "$work/out.tsv" "$work/classify.npy"
expect_failure "a routed adapter replacing a tensor of the body" 1 "lm-bias/adapter_model.safetensors: tensor 'base_model.model.transformer.h.0.attn.c_attn.bias' replaces 'transformer.h.0.attn.c_attn.bias', which cannot change from row to row" lora-predict --model $d/gpt2-lm.safetensors --adapter attn=$a/lm-bias --route "$work/lm.routes" -o "$work/out.npy" "$work/lm.npy"
expect_no_file "no output after an error" "$work/out.npy"
expect_no_file "no text output after an error" "$work/out.tsv"
expect_failure "a name given twice" 2 "--adapter qv=.*: the name 'qv' is given twice" lora-predict --model $d/vit.safetensors --adapter qv=$a/vit-qv --adapter qv=$a/vit-mlp --route "$work/vit.routes" "$work/vit.npy"
expect_failure "the name -" 2 "--adapter -=.*: '-' stands for no adapter" lora-predict --model $d/vit.safetensors --adapter -=$a/vit-qv --route "$work/vit.routes" "$work/vit.npy"
expect_failure "no name" 2 "--adapter =.*: no name before '='" lora-predict --model $d/vit.safetensors --adapter =$a/vit-qv --route "$work/vit.routes" "$work/vit.npy"
expect_failure "names without --route" 2 "adapters given as NAME=DIR need --route" lora-predict --model $d/vit.safetensors "${vit_named[@]}" "$work/vit.npy"
expect_failure "--route without names" 2 "--route needs adapters given as NAME=DIR" lora-predict --model $d/vit.safetensors --adapter $a/vit-qv --route "$work/vit.routes" "$work/vit.npy"
expect_failure "input and routes both on stdin" 2 "INPUT and --route cannot both be standard input" lora-predict --model $d/vit.safetensors "${vit_named[@]}" --route - -

finish
