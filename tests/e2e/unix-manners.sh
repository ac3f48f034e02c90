#!/bin/bash
# What every tool owes a shell user: --help on stdout with exit 0, --version, usage errors
# with exit 2, binary output refused on a terminal, a quiet end on a closed pipe, and a
# full disk reported as an error.
source "$(dirname "$0")/lib.sh"

for tool in "$bin_dir"/*; do
    name=$(basename "$tool")
    run_command "$tool" --help
    if [ "$status" -eq 0 ] && head -n 1 "$work/stdout" | grep -q "^Usage: $name " && [ ! -s "$work/stderr" ]; then
        pass
    else
        fail "$name --help: usage on stdout, exit 0" "status $status" "$(head -c 200 "$work/stderr")"
    fi
    expect_success "$name --version" "$tool" --version
    expect_failure "$name: unknown option" 2 "^$name: unrecognised option '--no-such-option'" "$tool" --no-such-option
done

clip=tests/data/bpe/clip
# A pty from script(1): binary output to a terminal is refused, exit 2.
script -qec "bpe-encode --tokenizer $clip --pattern clip --format npy tests/data/bpe/texts.txt" /dev/null \
    >"$work/terminal" 2>&1
status=$?
if [ "$status" -eq 2 ] && grep -q "refusing to write binary output to a terminal" "$work/terminal"; then
    pass
else
    fail "binary output on a terminal is refused" "status $status" "$(head -c 300 "$work/terminal")"
fi

# A reader that stops early ends the writer quietly (SIGPIPE), with nothing on stderr.
for i in $(seq 2000); do cat tests/data/bpe/texts.txt; done >"$work/long.txt"
bpe-encode --tokenizer $clip --pattern clip "$work/long.txt" 2>"$work/stderr" | head -n 1 >/dev/null
status=${PIPESTATUS[0]}
if { [ "$status" -eq 0 ] || [ "$status" -eq 141 ]; } && [ ! -s "$work/stderr" ]; then
    pass
else
    fail "a closed pipe ends bpe-encode quietly" "status $status" "$(head -c 300 "$work/stderr")"
fi

# A full disk on stdout is an error, not a silent success.
printf '1\n0\n' >"$work/labels"
expect_failure "glue-eval: stdout on a full disk" 1 "^glue-eval: write error on standard output: No space left on device" \
    bash -c "glue-eval '$work/labels' '$work/labels' >/dev/full"
expect_failure "bpe-encode: stdout on a full disk" 1 "write error|write failed|No space left on device" \
    bash -c "bpe-encode --tokenizer $clip --pattern clip tests/data/bpe/texts.txt >/dev/full"

finish
