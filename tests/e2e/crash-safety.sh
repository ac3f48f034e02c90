#!/bin/bash
# Crash safety: a tool killed with SIGKILL at a random moment leaves its target as it was
# (the old file, or none), never a partial file. Each case runs the command once to learn
# its output and duration, then kills it at random points of that duration.
source "$(dirname "$0")/lib.sh"

# kill_at_random NAME TARGET COMMAND...: TARGET must be the command's output file.
kill_at_random() {
    local name=$1 target=$2
    shift 2
    local start end duration reference=$work/reference
    rm -f "$target"
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1 || { fail "$name: the command runs" "$*"; return; }
    end=$(date +%s%N)
    duration=$(((end - start) / 1000))  # microseconds
    mv "$target" "$reference"
    local trial bad=""
    for trial in $(seq 12); do
        if [ $((trial % 2)) -eq 0 ]; then echo "old contents" >"$target"; else rm -f "$target"; fi
        cp -p "$target" "$work/before" 2>/dev/null || rm -f "$work/before"
        "$@" >/dev/null 2>&1 &
        local pid=$!
        sleep "$(awk -v us="$duration" -v seed="$RANDOM" 'BEGIN { srand(seed); printf "%.6f", rand() * us / 1e6 }')"
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        if [ -e "$target" ] && ! cmp -s "$target" "$reference" && ! cmp -s "$target" "$work/before"; then
            bad="trial $trial: $target is neither the old file nor the complete new one"
            break
        fi
        if [ ! -e "$target" ] && [ -e "$work/before" ]; then
            bad="trial $trial: the old $target disappeared"
            break
        fi
    done
    if [ -n "$bad" ]; then fail "$name" "$bad"; else pass; fi
    rm -f "$work"/.*.tmp.* "$reference"  # temporaries a SIGKILL left: never the target itself
}

awk 'BEGIN { srand(3); for (i = 0; i < 300000; i++) print int(rand() * 3) }' >"$work/gold"
awk 'BEGIN { srand(4); for (i = 0; i < 300000; i++) print int(rand() * 3) }' >"$work/pred"
kill_at_random "glue-eval -o survives SIGKILL" "$work/metrics.tsv" \
    glue-eval --bootstrap 40 --metric acc,mcc -o "$work/metrics.tsv" "$work/gold" "$work/pred"

for i in $(seq 40); do cat tests/data/clip-embed/images.txt; done >"$work/many-images.txt"
kill_at_random "clip-embed -o survives SIGKILL" "$work/embeddings.npy" \
    clip-embed --model tests/data/clip-embed/tiny-clip --files-from "$work/many-images.txt" -o "$work/embeddings.npy"

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
