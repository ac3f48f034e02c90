#!/bin/bash
# bpe-train end to end: the same merges.txt and vocab.json as Hugging Face tokenizers'
# trainer (npm package, trained here at test time), a corpus worked by hand, options,
# continuing a tokenizer, errors.
source "$(dirname "$0")/lib.sh"
d=tests/data/bpe
modules=$(tests/data/bpe/npm-packages) || { fail "npm install of the reference packages"; finish; exit; }

# --- Hugging Face interop: Tokenizer.train(files) with a ByteLevel pre-tokenizer ----------
# English prose and code (this repository's texts) and a corpus of short random words over
# three letters, where most counts tie and the tie rule decides.
cat $d/texts.txt $d/document.txt README.md man/*.[1-9] tests/data/glue-eval/*.tsv >"$work/english.txt"
python3 -c "
import random
random.seed(3)
for line in range(4000):
    print(' '.join(''.join(random.choice('abc') for _ in range(random.randint(1, 9))) for _ in range(random.randint(1, 12))))
" >"$work/ties.txt"
for corpus in english ties; do
    node $d/hf-train.js "$modules" "$work/hf-$corpus" "$work/$corpus.txt" >/dev/null 2>&1
    expect_success "$corpus: train" bpe-train -q --vocab-size 30000 --alphabet seen -o "$work/ours-$corpus" "$work/$corpus.txt"
    expect_same "$corpus: merges.txt as Hugging Face's, line for line" "$work/hf-$corpus/merges.txt" "$work/ours-$corpus/merges.txt"
    expect_same "$corpus: vocab.json as Hugging Face's" "$work/hf-$corpus/vocab.json" "$work/ours-$corpus/vocab.json"
done
# The tokens of a vocab.json in id order, one per line (read by Python, not by us).
tokens() { python3 -c "import json, sys; [print(json.dumps(t)) for t, i in sorted(json.load(open(sys.argv[1])).items(), key=lambda e: e[1])]" "$1"; }
# A smaller vocabulary stops early: the first merges of the full run.
expect_success "english: 1000 tokens" bpe-train -q --vocab-size 1000 --alphabet seen -o "$work/small" "$work/english.txt"
alphabet=$(($(tokens "$work/ours-english/vocab.json" | wc -l) - $(wc -l <"$work/ours-english/merges.txt") + 1))
head -n $((1000 - alphabet + 1)) "$work/ours-english/merges.txt" >"$work/expected"
expect_same "english: 1000 tokens are the first merges" "$work/expected" "$work/small/merges.txt"
expect_success "english: two threads" bpe-train -q --threads 2 --vocab-size 30000 --alphabet seen -o "$work/two-threads" "$work/english.txt"
expect_same "english: same merges on two threads" "$work/ours-english/merges.txt" "$work/two-threads/merges.txt"

# --- A corpus worked by hand ------------------------------------------------------------
# One word, aaabdaaabac (pattern none). Ids: a 0, b 1, c 2, d 3. Pair counts: aa 4, ab 2,
# bd da ba ac 1: merge "a a" (id 4): aa a b d aa a b a c. Now (aa,a) and (a,b) both count 2:
# the smaller pair, (0,1), wins: "a b" (5). Then (aa,ab) 2: "aa ab" (6): aaab d aaab a c.
# All pairs count 1; in id order: (a,c)=(0,2), then (d,aaab)=(3,6), then (aaab,daaab), then
# (aaabdaaab,ac).
printf 'aaabdaaabac' >"$work/hand.txt"
printf '#version: 0.2\na a\na b\naa ab\na c\nd aaab\naaab daaab\naaabdaaab ac\n' >"$work/expected-merges"
printf '{"a":0,"b":1,"c":2,"d":3,"aa":4,"ab":5,"aaab":6,"ac":7,"daaab":8,"aaabdaaab":9,"aaabdaaabac":10}' >"$work/expected-vocab"
expect_warning "hand-worked: warns that the vocabulary is smaller" "the vocabulary has 11 tokens, fewer than --vocab-size 100: no pair is left to merge" \
    bpe-train --pattern none --alphabet seen --vocab-size 100 -o "$work/hand" "$work/hand.txt"
expect_same "hand-worked: merges" "$work/expected-merges" "$work/hand/merges.txt"
expect_same "hand-worked: vocab" "$work/expected-vocab" "$work/hand/vocab.json"
printf '#version: 0.2\na a\n' >"$work/expected-merges"
expect_success "--min-frequency 3 stops after aa" bpe-train -q --pattern none --alphabet seen --min-frequency 3 --vocab-size 100 -o "$work/frequent" "$work/hand.txt"
expect_same "--min-frequency: merges" "$work/expected-merges" "$work/frequent/merges.txt"

# --- Options ----------------------------------------------------------------------------
expect_success "special tokens and all 256 bytes" bpe-train -q --special-tokens '<|endoftext|>,<pad>' --vocab-size 300 -o "$work/special" "$work/english.txt"
tokens "$work/special/vocab.json" >"$work/special.tokens"
printf '"<|endoftext|>"\n"<pad>"\n"!"\n"\\""\n' >"$work/expected"
expect_output "special tokens first, then the bytes in GPT-2's order" "$work/expected" head -n 4 "$work/special.tokens"
printf '"\\u0143"\n' >"$work/expected"
expect_output "byte 0xAD (U+0143) is the last byte, id 257" "$work/expected" sed -n 258p "$work/special.tokens"
echo 300 >"$work/expected"
expect_output "300 tokens" "$work/expected" bash -c "wc -l <'$work/special.tokens'"
printf 'x\xff\x00y\n' >"$work/expected"
expect_output "a tokenizer that encodes any byte" "$work/expected" bash -c "printf 'x\xff\x00y\n' | bpe-encode --tokenizer '$work/special' | bpe-decode --tokenizer '$work/special'"
expect_output "standard input" "$work/ours-english/merges.txt" bash -c "bpe-train -q --vocab-size 30000 --alphabet seen -o '$work/stdin' <'$work/english.txt' && cat '$work/stdin/merges.txt'"
# Continuing: 500 tokens, then continued to 1500, is the same as 1500 at once.
bpe-train -q --vocab-size 500 -o "$work/first" "$work/english.txt"
bpe-train -q --vocab-size 1500 -o "$work/direct" "$work/english.txt"
expect_success "--continue" bpe-train -q --vocab-size 1500 --continue "$work/first" -o "$work/continued" "$work/english.txt"
expect_same "--continue: the same merges as one run" "$work/direct/merges.txt" "$work/continued/merges.txt"
expect_same "--continue: the same ids as one run" "$work/direct/vocab.json" "$work/continued/vocab.json"
expect_success "--continue on other text" bpe-train -q --vocab-size 800 --continue "$work/first" -o "$work/extended" "$work/ties.txt"
expect_output "--continue keeps the old merges first" "$work/first/merges.txt" head -n "$(wc -l <"$work/first/merges.txt")" "$work/extended/merges.txt"
expect_success "clip pattern: tokens end in </w>" bpe-train -q --pattern clip --vocab-size 700 -o "$work/clip" "$work/english.txt"
printf '"!</w>"\n' >"$work/expected"
tokens "$work/clip/vocab.json" >"$work/clip.tokens"
expect_output "clip: the 256 bytes, then the same with </w>" "$work/expected" sed -n 257p "$work/clip.tokens"

# --- Errors -----------------------------------------------------------------------------
expect_failure "missing input" 1 "/absent.txt: No such file or directory" bpe-train --vocab-size 300 -o "$work/none" "$work/absent.txt"
expect_no_file "no output folder after an error" "$work/none"
expect_failure "a folder as input" 1 "$work: is a directory" bpe-train --vocab-size 300 -o "$work/none" "$work"
expect_failure "--continue without a tokenizer" 1 "/empty: holds neither vocab.json and merges.txt" bash -c "mkdir -p '$work/empty' && bpe-train --vocab-size 300 --continue '$work/empty' -o '$work/none' '$work/hand.txt'"
expect_failure "no --vocab-size" 2 "give the vocabulary size with --vocab-size N" bpe-train -o "$work/none" "$work/hand.txt"
expect_failure "no -o" 2 "give the output folder with -o DIR" bpe-train --vocab-size 300 "$work/hand.txt"
expect_failure "unknown alphabet" 2 "unknown alphabet 'some'" bpe-train --alphabet some --vocab-size 300 -o "$work/none" "$work/hand.txt"
expect_failure "unknown pattern" 2 "unknown pattern 'bert'" bpe-train --pattern bert --vocab-size 300 -o "$work/none" "$work/hand.txt"
expect_failure "--vocab-size over the limit" 2 "--vocab-size 16777217: at most 16777216 tokens" bpe-train --vocab-size 16777217 -o "$work/none" "$work/hand.txt"
expect_no_file "--vocab-size over the limit: no output" "$work/none"

finish
