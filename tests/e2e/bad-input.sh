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
tests/e2e/make-hostile-inputs "$h" "$model" "$adapter" "$tokenizer" || { fail "make-hostile-inputs"; finish; exit; }
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
hostile "bpe-train: output is a file" "$work/text" bpe-train --vocab-size 257 -o "$work/text" "$work/text"

# --- vit-patchify -----------------------------------------------------------------------
for broken in truncated.png zero-width.png not-an-image.png empty.png truncated.jpg; do
    hostile "vit-patchify: image-$broken" "image-$broken" vit-patchify --preset clip --patch 16 -o "$out" "$h/image-$broken"
done
hostile "vit-patchify: decompression bomb" "image-bomb.png" vit-patchify --preset clip -o "$out" "$h/image-bomb.png"
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

finish
