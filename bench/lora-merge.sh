#!/bin/bash
# lora-merge on a synthetic 1.5 GB BF16 checkpoint in three shards with a rank-16 adapter on
# q, k, v and o of every layer (made by bench/lora-merge-checkpoint.py), against copying the
# same bytes with cp and against a PyTorch script that loads, merges and saves
# (bench/lora-merge-peer.py). Each command writes its own output folder and ends with its
# files on disk (lora-merge fsyncs them itself; the others are followed by sync on their
# files, also timed); the base stays in the page cache. Prints wall time and peak resident
# memory (GNU time) of each, and the ratios.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$here/out/lora-merge
threads=${THREADS:-$(nproc)}
if [ ! -f "$out/adapter/adapter_model.safetensors" ]; then
    mkdir -p "$out"
    /usr/bin/python3 "$here/lora-merge-checkpoint.py" "$out"
fi
model_bytes=$(cat "$out"/base/*.safetensors | wc -c)
cat "$out"/base/*.safetensors >/dev/null  # into the page cache, for every contender alike

# measure NAME COMMAND...: runs it once, prints "seconds kilobytes" of the whole command.
measure() {
    rm -rf "$out/result"
    /usr/bin/time -f "%e %M" -o "$out/time" "$@" >/dev/null
    cat "$out/time"
}

read -r ours_s ours_kb < <(measure "$here/../bin/lora-merge" --threads "$threads" -q "$out/base" "$out/adapter" -o "$out/result")
ours_files=$(ls "$out/result")
read -r cp_s cp_kb < <(measure sh -c "cp -r '$out/base' '$out/result' && sync '$out'/result/*")
read -r peer_s peer_kb < <(THREADS=$threads measure sh -c "/usr/bin/python3 '$here/lora-merge-peer.py' '$out/base' '$out/adapter' '$out/result' && sync '$out'/result/*")
rm -rf "$out/result"

mb() { echo "$1 / 1024" | bc; }
printf '%-58s %7.2f s  %6s MB peak\n' "lora-merge ($threads threads)" "$ours_s" "$(mb "$ours_kb")"
printf '%-58s %7.2f s  %6s MB peak\n' "cp -r + sync (the same bytes)" "$cp_s" "$(mb "$cp_kb")"
printf '%-58s %7.2f s  %6s MB peak\n' "PyTorch load + merge + save + sync ($threads threads)" "$peer_s" "$(mb "$peer_kb")"
printf 'lora-merge / cp: %.2fx the time (goal: at most 2x); PyTorch / lora-merge: %.1fx (goal: at least 3x)\n' \
    "$(echo "$ours_s / $cp_s" | bc -l)" "$(echo "$peer_s / $ours_s" | bc -l)"
printf 'peak memory of lora-merge: %.1f%% of the model'"'"'s %s MB (goal: under 15%%); PyTorch: %.0f%%\n' \
    "$(echo "100 * $ours_kb * 1024 / $model_bytes" | bc -l)" "$((model_bytes / 1000000))" \
    "$(echo "100 * $peer_kb * 1024 / $model_bytes" | bc -l)"
[ -n "$ours_files" ]
