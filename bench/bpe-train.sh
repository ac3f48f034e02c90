#!/bin/bash
# bpe-train against Hugging Face tokenizers (npm package) and sentencepiece's spm_train
# --model_type=bpe (Debian) on the ~100 MB English corpus of bench/make-bpe-corpus: wall
# time and peak memory (resident set) of each whole process, on 1 and 2 threads.
# tokenizers' Node binding trains with its default trainer only (30,000 tokens, the
# alphabet the text holds), so bpe-train is timed with the same settings for that
# comparison, and at 32,000 tokens against spm_train.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
"$here/make-bpe-corpus"
corpus=$here/out/bpe/corpus.txt
modules=$("$here/../tests/data/bpe/npm-packages")
out=$here/out/bpe/train
mkdir -p "$out"

# "seconds peak-MB" of a command.
measure() {
    /usr/bin/time -f "%e %M" -o "$out/time" "$@" >/dev/null 2>"$out/stderr" || { cat "$out/stderr" >&2; return 1; }
    awk '{ printf "%.2f %.0f", $1, $2 / 1024 }' "$out/time"
}
line() {
    local what=$1 threads=$2 ours=$3 peer_name=$4 peer=$5
    read -r ours_s ours_mb <<<"$ours"
    read -r peer_s peer_mb <<<"$peer"
    printf '%-26s %d thread(s): bpe-train %6.2f s %5d MB   %-13s %7.2f s %5d MB   time ratio %5.1fx   memory ratio %4.2f\n' \
        "$what" "$threads" "$ours_s" "$ours_mb" "$peer_name" "$peer_s" "$peer_mb" "$(echo "$peer_s / $ours_s" | bc -l)" \
        "$(echo "$ours_mb / $peer_mb" | bc -l)"
}

for threads in 1 2; do
    ours=$(measure "$here/../bin/bpe-train" -q --threads "$threads" --vocab-size 30000 --alphabet seen -o "$out/ours" "$corpus")
    hf=$(RAYON_NUM_THREADS=$threads measure node "$here/../tests/data/bpe/hf-train.js" "$modules" "$out/hf" "$corpus")
    if cmp -s "$out/ours/merges.txt" "$out/hf/merges.txt" && cmp -s "$out/ours/vocab.json" "$out/hf/vocab.json"; then same="same merges.txt and vocab.json"; else same="DIFFERENT merges.txt or vocab.json"; fi
    line "30,000 tokens, alphabet seen" "$threads" "$ours" "HF tokenizers" "$hf"
    echo "    ($same)"
    ours=$(measure "$here/../bin/bpe-train" -q --threads "$threads" --vocab-size 32000 -o "$out/ours32k" "$corpus")
    spm=$(measure spm_train --input="$corpus" --model_prefix="$out/spm" --model_type=bpe --vocab_size=32000 \
        --num_threads="$threads" --minloglevel=2)
    line "32,000 tokens" "$threads" "$ours" "spm_train" "$spm"
done
