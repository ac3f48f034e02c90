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

finish
