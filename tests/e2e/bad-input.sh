#!/bin/bash
# Hostile and malformed inputs, at least ten for every tool: each must end with exit 1 and
# one line on stderr naming the file, leave no output file, and neither crash nor hang nor
# take unbounded memory (each command runs under a 20 s timeout and, outside sanitizer
# builds, a 4 GiB address-space limit). The inputs are made by make-hostile-inputs from
# small valid ones.
source "$(dirname "$0")/lib.sh"

h=$work/hostile
model=tests/data/nn/gpt2-lm.safetensors
adapter=tests/data/nn/adapter-lm
tokenizer=tests/data/bpe/clip
clip=tests/data/nn/clip.safetensors
lm=tests/data/train/lm.u16
lora-train -q --model "$model" --steps 2 --context 15 --checkpoint-dir "$work/checkpoint" -o "$work/trained" $lm ||
    { fail "a checkpoint to break"; finish; exit; }
tests/e2e/make-hostile-inputs "$h" "$model" "$adapter" "$tokenizer" "$clip" "$work/checkpoint/checkpoint.safetensors" ||
    { fail "make-hostile-inputs"; finish; exit; }
out=$work/out

limited() {
    (
        ulimit -c 0
        case $bin_dir in *sanitize*) ;; *) ulimit -v 4194304 ;; esac
        exec timeout 20 "$@"
    )
}

# hostile NAME PATTERN COMMAND...: exit 1, one stderr line matching PATTERN, no $out.
hostile() {
    local name=$1 pattern=$2
    shift 2
    rm -rf "$out"
    run_command limited "$@"
    local lines
    lines=$(wc -l <"$work/stderr")
    if [ "$status" -eq 124 ]; then
        fail "$name: hangs" "command: $*"
    elif [ "$status" -ne 1 ] || [ "$lines" -ne 1 ] || ! grep -Eq -- "$pattern" "$work/stderr"; then
        fail "$name" "command: $*" "status $status" "stderr ($lines lines): $(head -c 300 "$work/stderr")" \
            "expected: $pattern"
    elif [ -e "$out" ]; then
        fail "$name: left an output" "$out"
    else
        pass
    fi
}

# --- glue-eval -------------------------------------------------------------------------
printf '1\n0\n' >"$work/two"
hostile "glue-eval: binary garbage" "binary-garbage.txt:" glue-eval -o "$out" "$work/two" "$h/binary-garbage.txt"
hostile "glue-eval: empty gold" "empty.txt: no rows" glue-eval -o "$out" "$h/empty.txt" "$work/two"
hostile "glue-eval: a folder" "$h: is a directory" glue-eval -o "$out" "$h" "$work/two"
hostile "glue-eval: NUL in ids" "ids-nul.txt:1:" glue-eval --metric pearson -o "$out" "$h/ids-nul.txt" "$h/ids-nul.txt"
hostile "glue-eval: words for pearson" "ids-words.txt:1: '1 2 three'" glue-eval --metric pearson -o "$out" "$h/ids-words.txt" "$h/ids-words.txt"
printf 'index\tprediction\n0\t1\n' >"$work/submission"
hostile "glue-eval: task gold is garbage" "binary-garbage.txt" glue-eval --task stsb -o "$out" "$h/binary-garbage.txt" "$work/submission"
printf 'gj1\t1\t\tA.\ngj2\t0\t*\tB.\n' >"$work/cola.tsv"
hostile "glue-eval: submission is an npy" "ids-float.npy" glue-eval --task cola -o "$out" "$work/cola.tsv" "$h/ids-float.npy"
hostile "glue-eval: missing" "absent: No such file" glue-eval -o "$out" "$h/absent" "$work/two"
hostile "glue-eval: row counts" "different row counts" glue-eval -o "$out" "$work/two" "$h/ids-nul.txt"
hostile "glue-eval: empty predictions" "empty.txt: no rows" glue-eval -o "$out" "$work/two" "$h/empty.txt"

# --- bpe-encode / bpe-decode / bpe-train -------------------------------------------------
printf 'a photo of a cat\n' >"$work/text"
for broken in vocab-truncated vocab-empty vocab-not-object merge-malformed merge-unknown merge-invalid-utf8 duplicate-id; do
    hostile "bpe-encode: tokenizer $broken" "tokenizer-$broken/(vocab.json|merges.txt)" \
        bpe-encode --tokenizer "$h/tokenizer-$broken" --pattern clip -o "$out" "$work/text"
done
hostile "bpe-encode: tokenizer.json of WordPiece" "tokenizer-wordpiece.json" bpe-encode --tokenizer "$h/tokenizer-wordpiece.json" -o "$out" "$work/text"
hostile "bpe-encode: tiktoken bad base64" "tokenizer-bad-base64.tiktoken:2" bpe-encode --tokenizer "$h/tokenizer-bad-base64.tiktoken" -o "$out" "$work/text"
hostile "bpe-encode: an id over the vocabulary limit" "tokenizer-id-huge/vocab.json: .*16777216" bpe-encode --tokenizer "$h/tokenizer-id-huge" --pattern clip -o "$out" "$work/text"
hostile "bpe-encode: tiktoken huge rank" "tokenizer-rank-huge.tiktoken:2" bpe-encode --tokenizer "$h/tokenizer-rank-huge.tiktoken" -o "$out" "$work/text"
hostile "bpe-encode: input is a folder" "$h: is a directory" bpe-encode --tokenizer $tokenizer --pattern clip -o "$out" "$h"
hostile "bpe-decode: id out of range" "ids-out-of-vocabulary.npy.*99999999" bpe-decode --tokenizer $tokenizer --format npy -o "$out" "$h/ids-out-of-vocabulary.npy"
hostile "bpe-decode: negative id" "ids-negative.npy" bpe-decode --tokenizer $tokenizer --format npy -o "$out" "$h/ids-negative.npy"
hostile "bpe-decode: float ids" "ids-float.npy" bpe-decode --tokenizer $tokenizer --format npy -o "$out" "$h/ids-float.npy"
hostile "bpe-decode: lying npy shape" "ids-shape-lies.npy" bpe-decode --tokenizer $tokenizer --format npy -o "$out" "$h/ids-shape-lies.npy"
hostile "bpe-decode: truncated npy" "ids-truncated.npy" bpe-decode --tokenizer $tokenizer --format npy -o "$out" "$h/ids-truncated.npy"
hostile "bpe-decode: object npy" "ids-object.npy" bpe-decode --tokenizer $tokenizer --format npy -o "$out" "$h/ids-object.npy"
hostile "bpe-decode: words" "ids-words.txt:1" bpe-decode --tokenizer $tokenizer -o "$out" "$h/ids-words.txt"
hostile "bpe-decode: NUL" "ids-nul.txt:1" bpe-decode --tokenizer $tokenizer -o "$out" "$h/ids-nul.txt"
hostile "bpe-decode: not an npy" "ids-not-npy.npy" bpe-decode --tokenizer $tokenizer --format npy -o "$out" "$h/ids-not-npy.npy"
hostile "bpe-decode: garbage u16" "binary-garbage.txt" bpe-decode --tokenizer $tokenizer --format u16 -o "$out" "$h/binary-garbage.txt"
hostile "bpe-train: input is a folder" "$h: is a directory" bpe-train --vocab-size 300 -o "$out" "$h"
hostile "bpe-train: missing input" "absent: No such file" bpe-train --vocab-size 300 -o "$out" "$h/absent"
hostile "bpe-train: continue from a broken tokenizer" "tokenizer-merge-malformed" bpe-train --vocab-size 600 --continue "$h/tokenizer-merge-malformed" -o "$out" "$work/text"
hostile "bpe-train: continue from a truncated vocab" "tokenizer-vocab-truncated" bpe-train --vocab-size 600 --continue "$h/tokenizer-vocab-truncated" -o "$out" "$work/text"
for broken in vocab-empty vocab-not-object duplicate-id id-huge merge-unknown merge-invalid-utf8; do
    hostile "bpe-train: continue from tokenizer-$broken" "tokenizer-$broken/(vocab.json|merges.txt)" bpe-train --vocab-size 600 --continue "$h/tokenizer-$broken" -o "$out" "$work/text"
done
hostile "bpe-train: continue from a WordPiece tokenizer.json" "tokenizer-wordpiece.json" bpe-train --vocab-size 600 --continue "$h/tokenizer-wordpiece.json" -o "$out" "$work/text"
hostile "bpe-train: continue from bad base64" "tokenizer-bad-base64.tiktoken:2" bpe-train --vocab-size 600 --continue "$h/tokenizer-bad-base64.tiktoken" -o "$out" "$work/text"
hostile "bpe-train: continue from a folder without a tokenizer" "$h: holds neither" bpe-train --vocab-size 600 --continue "$h" -o "$out" "$work/text"
hostile "bpe-train: output is a file" "$work/text" bpe-train --vocab-size 257 -o "$work/text" "$work/text"

# --- vit-patchify -----------------------------------------------------------------------
for broken in truncated.png zero-width.png not-an-image.png empty.png truncated.jpg; do
    hostile "vit-patchify: image-$broken" "image-$broken" vit-patchify --preset clip --patch 16 -o "$out" "$h/image-$broken"
done
hostile "vit-patchify: decompression bomb" "image-bomb.png: cannot decode: 60000x60000 is more than 67108864 pixels" vit-patchify --preset clip -o "$out" "$h/image-bomb.png"
hostile "vit-patchify: over the pixel limit" "image-over-limit.png: cannot decode: 8193x8192 is more than 67108864 pixels" vit-patchify --preset clip -o "$out" "$h/image-over-limit.png"
hostile "vit-patchify: smaller than the crop" "image-small.png" vit-patchify --resize none --crop 32 -o "$out" "$h/image-small.png"
hostile "vit-patchify: IDX bad magic" "images.idx-bad-magic" vit-patchify --idx --preset none --resize none --crop none --patch 4 --channels 1 -o "$out" "$h/images.idx-bad-magic"
hostile "vit-patchify: IDX count lies" "images.idx-count-lies" vit-patchify --idx --preset none --resize none --crop none --patch 4 --channels 1 -o "$out" "$h/images.idx-count-lies"
hostile "vit-patchify: IDX bad type" "images.idx-bad-type" vit-patchify --idx --preset none --resize none --crop none --patch 4 --channels 1 -o "$out" "$h/images.idx-bad-type"
hostile "vit-patchify: a folder" "$h: is a directory" vit-patchify --preset clip -o "$out" "$h"
hostile "vit-patchify: unpatchify a token-id npy" "ids-float.npy" vit-patchify --unpatchify -o "$out" "$h/ids-float.npy"

# --- model-init ---------------------------------------------------------------------------
printf '{"n_embd": 30, "n_head": 4, "n_layer": 1}' >"$work/heads.json"
printf '{"n_embd": 64, "n_head": 4, "n_layer": -1}' >"$work/layers.json"
printf '{"n_embd": 1000000000, "n_head": 4, "n_layer": 100}' >"$work/huge.json"
printf '{"n_embd": 64, "vocab_size": 0}' >"$work/vocabulary.json"
printf '{"n_embd": 64, "activation_function": "swish-deluxe"}' >"$work/activation.json"
printf '{"n_embd": "wide"}' >"$work/type.json"
printf '{"n_embd": 64, ' >"$work/truncated.json"
printf '[64]' >"$work/array.json"
printf '{"n_positions": 1e300}' >"$work/overflow.json"
for broken in heads layers huge vocabulary activation type truncated array overflow; do
    hostile "model-init: config $broken" "$broken.json" model-init --arch gpt2 --config "$work/$broken.json" -o "$out"
done
hostile "model-init: config is a folder" "$h: is a directory" model-init --arch gpt2 --config "$h" -o "$out"

# --- lora-predict -------------------------------------------------------------------------
printf '[[1, 2, 3]]' >/dev/null
for broken in truncated empty header-length-lies not-json nan huge-shape wrong-dtype wrong-shape missing-tensor no-config bad-config; do
    hostile "lora-predict: model $broken" "model-$broken.safetensors" lora-predict --model "$h/model-$broken.safetensors" -o "$out" tests/data/nn/gpt2-classify.ids.npy
done
for broken in float shape-lies truncated fortran big-endian object negative out-of-vocabulary too-long empty 3d not-npy; do
    hostile "lora-predict: ids $broken" "ids-$broken.npy" lora-predict --model $model -o "$out" "$h/ids-$broken.npy"
done
# Under the address-space limit (not in sanitizer builds, which have none): a model larger
# than memory is refused when mapped.
case $bin_dir in
*sanitize*) ;;
*) hostile "lora-predict: a model larger than memory" "model-larger-than-memory.safetensors: cannot map" lora-predict --model "$h/model-larger-than-memory.safetensors" -o "$out" tests/data/nn/gpt2-classify.ids.npy ;;
esac
for broken in config-not-json prefix-tuning dora weights-truncated rank-mismatch inf empty-folder; do
    hostile "lora-predict: adapter $broken" "adapter-$broken" lora-predict --model $model --adapter "$h/adapter-$broken" -o "$out" tests/data/nn/gpt2-classify.ids.npy
done

# --- lora-merge ---------------------------------------------------------------------------
for broken in truncated empty header-length-lies not-json huge-shape wrong-shape missing-target; do
    hostile "lora-merge: base $broken" "model-$broken.safetensors" lora-merge -o "$out" "$h/model-$broken.safetensors" $adapter
done
for broken in config-not-json prefix-tuning dora weights-truncated rank-mismatch inf empty-folder; do
    hostile "lora-merge: adapter $broken" "adapter-$broken" lora-merge -o "$out" $model "$h/adapter-$broken"
done

# --- lora-train -----------------------------------------------------------------------------
# (Values out of range on the command line, such as --rank 0 or an unknown --targets, are
# usage errors, exit 2: tests/e2e/lora-train.sh.)
classify=tests/data/nn/gpt2-classify.safetensors
n=tests/data/nn
for broken in truncated empty header-length-lies not-json nan huge-shape wrong-dtype wrong-shape missing-tensor no-config bad-config; do
    hostile "lora-train: model $broken" "model-$broken.safetensors" lora-train -q --model "$h/model-$broken.safetensors" --steps 1 -o "$out" $lm
done
hostile "lora-train: the header length lies past the limit" "model-header-length-lies.safetensors: safetensors header length 1099511627776 is over the 100000000 byte limit" lora-train -q --model "$h/model-header-length-lies.safetensors" --steps 1 -o "$out" $lm
hostile "lora-train: odd bytes in a .u16" "tokens-odd.u16: 1 bytes" lora-train -q --model "$model" --steps 1 -o "$out" "$h/tokens-odd.u16"
hostile "lora-train: a token outside the vocabulary" "tokens-out-of-vocabulary.u16: token id 999" lora-train -q --model "$model" --steps 1 -o "$out" "$h/tokens-out-of-vocabulary.u16"
hostile "lora-train: an empty token stream" "tokens-empty.u16: no token ids" lora-train -q --model "$model" --steps 1 -o "$out" "$h/tokens-empty.u16"
hostile "lora-train: an npy whose shape lies" "ids-shape-lies.npy: truncated" lora-train -q --model "$model" --steps 1 -o "$out" "$h/ids-shape-lies.npy"
hostile "lora-train: data that is a folder" "$h: is a directory" lora-train -q --model "$model" --steps 1 -o "$out" "$h"
hostile "lora-train: fewer labels than rows" "labels-short.npy: 3 labels for the 4 rows" lora-train -q --model $classify --task classify --steps 1 -o "$out" $n/gpt2-classify.ids.npy "$h/labels-short.npy"
hostile "lora-train: float class labels" "labels-float.npy: class labels must be integers" lora-train -q --model $classify --task classify --steps 1 -o "$out" $n/gpt2-classify.ids.npy "$h/labels-float.npy"
hostile "lora-train: labels of two columns" "labels-2d.npy: labels must be" lora-train -q --model $classify --task classify --steps 1 -o "$out" $n/gpt2-classify.ids.npy "$h/labels-2d.npy"
hostile "lora-train: ids outside the vocabulary" "ids-out-of-vocabulary.npy: token id 99999999" lora-train -q --model $classify --task classify --steps 1 -o "$out" "$h/ids-out-of-vocabulary.npy" "$h/labels-one.npy"
hostile "lora-train: rows longer than the positions" "ids-too-long.npy: 5000 tokens per row, but the model has 16 positions" lora-train -q --model $classify --task classify --steps 1 -o "$out" "$h/ids-too-long.npy" "$h/labels-one.npy"
hostile "lora-train: float token ids" "ids-float.npy: token ids must be" lora-train -q --model $classify --task classify --steps 1 -o "$out" "$h/ids-float.npy" "$h/labels-one.npy"
hostile "lora-train: a binary label TSV" "binary-garbage.txt: no column 'label'" lora-train -q --model $classify --task classify --label-column label --steps 1 -o "$out" $n/gpt2-classify.ids.npy "$h/binary-garbage.txt"
hostile "lora-train: a NaN target" "labels-nan.npy: row 1: the target is not a finite number" lora-train -q --model $n/gpt2-regress.safetensors --task regress --steps 1 -o "$out" $n/gpt2-regress.ids.npy "$h/labels-nan.npy"
hostile "lora-train: NaN patches" "patches-nan.npy: row 0 holds a NaN" lora-train -q --model $n/vit.safetensors --task classify --steps 1 -o "$out" "$h/patches-nan.npy" $n/vit.targets.npy
hostile "lora-train: broken dev data" "tokens-odd.u16: 1 bytes" lora-train -q --model "$model" --steps 1 --dev "$h/tokens-odd.u16" -o "$out" $lm
hostile "lora-train: dev ids of the wrong shape" "ids-3d.npy: token ids must be an array \(N, T\), not 3-dimensional" lora-train -q --model $classify --task classify --steps 1 --dev "$h/ids-3d.npy" --dev "$h/labels-one.npy" -o "$out" $n/gpt2-classify.ids.npy $n/gpt2-classify.targets.npy
hostile "lora-train: dev labels fewer than rows" "labels-short.npy: 3 labels" lora-train -q --model $classify --task classify --steps 1 --dev $n/gpt2-classify.ids.npy --dev "$h/labels-short.npy" -o "$out" $n/gpt2-classify.ids.npy $n/gpt2-classify.targets.npy
for broken in truncated a-model garbage nan steps-lie state-malformed; do
    hostile "lora-train: --resume from checkpoint-$broken" "checkpoint-$broken/checkpoint.safetensors: " lora-train -q --model "$model" --steps 2 --context 15 --checkpoint-dir "$h/checkpoint-$broken" --resume -o "$out" $lm
done
mkdir -p "$out.folder"
hostile "lora-train: a one-file output that is a folder" "$out.folder: is a folder" lora-train -q --model "$model" --method bitfit --steps 1 -o "$out.folder" $lm
hostile "lora-train: a log that is a folder" "$out.folder: is a directory" lora-train -q --model "$model" --steps 1 --log "$out.folder" -o "$out" $lm
rmdir "$out.folder"

# --- clip-embed -------------------------------------------------------------------------------
tiny_clip=tests/data/clip-embed/tiny-clip
patches=tests/data/clip-embed/patches.npy
for broken in truncated empty header-length-lies not-json nan huge-shape wrong-dtype wrong-shape missing-tensor no-config bad-config; do
    hostile "clip-embed: model $broken" "clip-$broken.safetensors" clip-embed --model "$h/clip-$broken.safetensors" --patches $n/clip.patches.npy -o "$out"
done
hostile "clip-embed: a gpt2 model" "gpt2-lm.safetensors: holds a gpt2 model; clip-embed needs a clip model" clip-embed --model "$model" --patches $patches -o "$out"
hostile "clip-embed: patches of two dimensions" "ids-float.npy: patches must be an array" clip-embed --model $tiny_clip --patches "$h/ids-float.npy" -o "$out"
hostile "clip-embed: integer patches" "ids-3d.npy: patches must be floats" clip-embed --model $tiny_clip --patches "$h/ids-3d.npy" -o "$out"
hostile "clip-embed: patches of the wrong shape" "vit.patches.npy: patches of shape \(16, 48\), the model takes \(16, 192\)" clip-embed --model $tiny_clip --patches $n/vit.patches.npy -o "$out"
hostile "clip-embed: NaN patches" "patches-nan.npy" clip-embed --model $tiny_clip --patches "$h/patches-nan.npy" -o "$out"
hostile "clip-embed: ids outside the vocabulary" "ids-out-of-vocabulary.npy: token id 99999999" clip-embed --model $tiny_clip --ids "$h/ids-out-of-vocabulary.npy" -o "$out"
hostile "clip-embed: negative ids" "ids-negative.npy: token id -5" clip-embed --model $tiny_clip --ids "$h/ids-negative.npy" -o "$out"
hostile "clip-embed: ids whose shape lies" "ids-shape-lies.npy: truncated" clip-embed --model $tiny_clip --ids "$h/ids-shape-lies.npy" -o "$out"
hostile "clip-embed: ids longer than the positions" "ids-too-long.npy: 5000 tokens per row, but the model has 16 positions" clip-embed --model $tiny_clip --ids "$h/ids-too-long.npy" -o "$out"
hostile "clip-embed: no ids" "ids-empty.npy: no token ids" clip-embed --model $tiny_clip --ids "$h/ids-empty.npy" -o "$out"
printf '%s\n' "$h" >"$work/list-folder"
printf 'tests/data/image/rgb.png\n%s\n' "$h/image-bomb.png" >"$work/list-bomb"
: >"$work/list-empty"
hostile "clip-embed: a list naming a folder" "$h: is a directory" clip-embed --model $tiny_clip --files-from "$work/list-folder" -o "$out"
hostile "clip-embed: a list naming a bomb" "image-bomb.png: cannot decode: 60000x60000" clip-embed --model $tiny_clip --files-from "$work/list-bomb" -o "$out"
hostile "clip-embed: an empty list" "list-empty: no image paths" clip-embed --model $tiny_clip --files-from "$work/list-empty" -o "$out"
hostile "clip-embed: a binary list" "binary-garbage.txt:1: a NUL byte" clip-embed --model $tiny_clip --files-from "$h/binary-garbage.txt" -o "$out"
for broken in truncated.png zero-width.png truncated.jpg empty.png not-an-image.png over-limit.png; do
    hostile "clip-embed: image-$broken" "image-$broken" clip-embed --model $tiny_clip --images tests/data/image/rgb.png "$h/image-$broken" -o "$out"
done
hostile "clip-embed: an image that is a folder" "$h: is a directory" clip-embed --model $tiny_clip --images "$h" -o "$out"
hostile "clip-embed: binary class names" "binary-garbage.txt:1: not UTF-8 text" clip-embed --model $tiny_clip --patches $patches --zeroshot "$h/binary-garbage.txt" -o "$out"
hostile "clip-embed: no class names" "empty.txt: no class names" clip-embed --model $tiny_clip --patches $patches --zeroshot "$h/empty.txt" -o "$out"
hostile "clip-embed: class names in a folder" "$h: is a directory" clip-embed --model $tiny_clip --patches $patches --zeroshot "$h" -o "$out"
hostile "clip-embed: binary captions" "binary-garbage.txt:1: not UTF-8 text" clip-embed --model $tiny_clip --text "$h/binary-garbage.txt" -o "$out"
hostile "clip-embed: invalid UTF-8 captions" "tokenizer-merge-invalid-utf8/merges.txt:4: not UTF-8 text" clip-embed --model $tiny_clip --text "$h/tokenizer-merge-invalid-utf8/merges.txt" -o "$out"
hostile "clip-embed: a truncated tokenizer" "tokenizer-vocab-truncated/vocab.json:1: not valid JSON" clip-embed --model $tiny_clip --tokenizer "$h/tokenizer-vocab-truncated" --text tests/data/clip-embed/captions.txt -o "$out"
hostile "clip-embed: --concatenate a lying npy" "ids-shape-lies.npy" clip-embed --concatenate -o "$out" "$h/ids-shape-lies.npy"
hostile "clip-embed: --concatenate rows of 12 GB that are not there" "ids-row-lies.npy: truncated" clip-embed --concatenate -o "$out" "$h/ids-row-lies.npy"
hostile "clip-embed: --concatenate them from a pipe" "<stdin>: truncated" bash -c "clip-embed --concatenate -o '$out' - <'$h/ids-row-lies.npy'"

finish
