#!/bin/bash
# Crash safety: a tool killed with SIGKILL at a random moment leaves its target as it was
# (the old file, or none), never a partial file. Each case runs the command once to learn
# its output and duration, then kills it at random points of that duration.
source "$(dirname "$0")/lib.sh"

# whole_or_old FILE REFERENCE BEFORE: FILE is the complete new file (REFERENCE) or the one
# that was there before the run (BEFORE), or absent if there was none; else says what it is.
whole_or_old() {
    if [ -e "$1" ]; then
        cmp -s "$1" "$2" || cmp -s "$1" "$3" || echo "$1 is neither the old file nor the complete new one"
    elif [ -e "$3" ]; then
        echo "the old $1 disappeared"
    fi
}

# kill_at_random NAME TARGET COMMAND...: TARGET must be the command's output: a file, or a
# folder whose files are each written atomically (each is checked as a file).
kill_at_random() {
    local name=$1 target=$2
    shift 2
    local start end duration reference=$work/reference
    rm -rf "$target" "$reference"
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1 || { fail "$name: the command runs" "$*"; return; }
    end=$(date +%s%N)
    duration=$(((end - start) / 1000))  # microseconds
    mv "$target" "$reference"
    local files=("")  # a file: the target itself
    [ -d "$reference" ] && mapfile -t files < <(cd "$reference" && ls)
    local trial bad="" file
    for trial in $(seq 12); do
        rm -rf "$target" "$work/before"
        if [ $((trial % 2)) -eq 0 ]; then
            if [ -d "$reference" ]; then
                mkdir "$target"
                for file in "${files[@]}"; do echo "old contents" >"$target/$file"; done
            else
                echo "old contents" >"$target"
            fi
            cp -a "$target" "$work/before"
        fi
        "$@" >/dev/null 2>&1 &
        local pid=$!
        sleep "$(awk -v us="$duration" -v seed="$RANDOM" 'BEGIN { srand(seed); printf "%.6f", rand() * us / 1e6 }')"
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        for file in "${files[@]}"; do
            bad=$(whole_or_old "$target${file:+/$file}" "$reference${file:+/$file}" "$work/before${file:+/$file}")
            [ -n "$bad" ] && break 2
        done
    done
    if [ -n "$bad" ]; then fail "$name" "trial $trial: $bad"; else pass; fi
    # Temporaries a SIGKILL left (never the target itself).
    rm -rf "$reference" "$(dirname "$target")"/.*.tmp.* "$target"/.*.tmp.*
}

awk 'BEGIN { srand(3); for (i = 0; i < 300000; i++) print int(rand() * 3) }' >"$work/gold"
awk 'BEGIN { srand(4); for (i = 0; i < 300000; i++) print int(rand() * 3) }' >"$work/pred"
kill_at_random "glue-eval -o survives SIGKILL" "$work/metrics.tsv" \
    glue-eval --bootstrap 40 --metric acc,mcc -o "$work/metrics.tsv" "$work/gold" "$work/pred"

for i in $(seq 40); do cat tests/data/clip-embed/images.txt; done >"$work/many-images.txt"
kill_at_random "clip-embed -o survives SIGKILL" "$work/embeddings.npy" \
    clip-embed --model tests/data/clip-embed/tiny-clip --files-from "$work/many-images.txt" -o "$work/embeddings.npy"

# The BPE tools, on 4.6 MB of fortunes; bpe-train's folder holds two files, each replaced
# atomically.
cat /usr/share/games/fortunes/{computers,science,people,literature} >"$work/corpus.txt"
for i in $(seq 8); do cat "$work/corpus.txt"; done >"$work/big.txt"
bpe-train -q --vocab-size 1000 -o "$work/tokenizer" "$work/corpus.txt"
kill_at_random "bpe-train -o survives SIGKILL" "$work/trained" \
    bpe-train -q --vocab-size 3000 --threads 1 -o "$work/trained" "$work/big.txt"
kill_at_random "bpe-encode -o survives SIGKILL" "$work/ids.npy" \
    bpe-encode -q --tokenizer "$work/tokenizer" --document --format npy --threads 1 -o "$work/ids.npy" "$work/big.txt"
bpe-encode -q --tokenizer "$work/tokenizer" --document --format u16 -o "$work/ids.u16" "$work/big.txt"
for i in $(seq 4); do cat "$work/ids.u16"; done >"$work/many-ids.u16"
kill_at_random "bpe-decode -o survives SIGKILL" "$work/decoded.txt" \
    bpe-decode -q --tokenizer "$work/tokenizer" --format u16 -o "$work/decoded.txt" "$work/many-ids.u16"

# vit-patchify on 480 images; model-init and lora-merge on a 38 MB model (a vocabulary of
# 300000 around the tiny test model, whose adapter fits it but for its token embedding's
# pair, left out); lora-predict's logits of 3000 rows (18 MB).
for i in $(seq 80); do printf '%s\n' tests/data/image/{photo,portrait,gray}.jpg tests/data/image/{rgb,la,palette}.png; done >"$work/images.txt"
kill_at_random "vit-patchify -o survives SIGKILL" "$work/patches.npy" \
    vit-patchify -q --resize 64 --crop 64 --patch 16 --threads 1 --files-from "$work/images.txt" -o "$work/patches.npy"
wide=(--arch gpt2 --preset tiny --set n_embd=32 --set n_head=4 --set n_layer=2 --set n_positions=16 --set vocab_size=300000)
kill_at_random "model-init -o survives SIGKILL" "$work/wide.safetensors" \
    model-init -q "${wide[@]}" --threads 1 -o "$work/wide.safetensors"
model-init -q "${wide[@]}" -o "$work/wide.safetensors"
mkdir "$work/blocks-only"
/usr/bin/python3 - tests/data/nn/adapter-lm "$work/blocks-only" <<'PY'
import json, shutil, struct, sys
source, target = sys.argv[1:]
shutil.copy(f"{source}/adapter_config.json", target)
with open(f"{source}/adapter_model.safetensors", "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    data = f.read()
kept, parts, offset = {"__metadata__": header.pop("__metadata__")}, [], 0
for name, info in header.items():
    if ".wte." in name:
        continue
    begin, end = info["data_offsets"]
    parts.append(data[begin:end])
    kept[name] = dict(info, data_offsets=[offset, offset + end - begin])
    offset += end - begin
text = json.dumps(kept).encode()
with open(f"{target}/adapter_model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(parts))
PY
kill_at_random "lora-merge -o survives SIGKILL" "$work/merged.safetensors" \
    lora-merge -q --threads 1 -o "$work/merged.safetensors" "$work/wide.safetensors" "$work/blocks-only"
/usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(5).integers(0, 96, (3000, 16), np.int32))" "$work/rows.npy"
kill_at_random "lora-predict -o survives SIGKILL" "$work/logits.npy" \
    lora-predict -q --model tests/data/nn/gpt2-lm.safetensors --adapter tests/data/nn/adapter-lm --threads 1 -o "$work/logits.npy" "$work/rows.npy"

# lora-train: its output, and its checkpoint, which a run killed at any moment leaves whole
# (the previous one, or none): resuming from it ends with the output of a run never stopped.
t=tests/data/train
common=(-q --model tests/data/nn/gpt2-lm.safetensors --method bitfit --steps 40 --lr 1e-3 --context 15 --threads 1)
train() { lora-train "${common[@]}" "$@" $t/lm.u16; }
kill_at_random "lora-train -o survives SIGKILL" "$work/trained.safetensors" lora-train "${common[@]}" -o "$work/trained.safetensors" $t/lm.u16
train -o "$work/whole.safetensors"
start=$(date +%s%N)
train --checkpoint-dir "$work/timing" --checkpoint-every 1 -o "$work/timing.safetensors"
duration=$((($(date +%s%N) - start) / 1000))
bad=""
for trial in $(seq 6); do
    rm -rf "$work/checkpoints" "$work/resumed.safetensors"
    lora-train "${common[@]}" --checkpoint-dir "$work/checkpoints" --checkpoint-every 1 -o "$work/resumed.safetensors" $t/lm.u16 &
    pid=$!
    sleep "$(awk -v us="$duration" -v seed="$RANDOM" 'BEGIN { srand(seed); printf "%.6f", rand() * us / 1e6 }')"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    if ! train --checkpoint-dir "$work/checkpoints" --checkpoint-every 1 --resume -o "$work/resumed.safetensors" 2>"$work/resume.err" ||
        ! cmp -s "$work/resumed.safetensors" "$work/whole.safetensors"; then
        bad="trial $trial: resuming did not give the uninterrupted run's output: $(head -c 300 "$work/resume.err")"
        break
    fi
done
if [ -n "$bad" ]; then fail "lora-train checkpoints survive SIGKILL" "$bad"; else pass; fi

finish
