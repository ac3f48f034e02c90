# Helpers for the end-to-end tests. Each tests/e2e/*.sh sources this file, then lists its
# cases as one call per line, so that a test file reads as a table:
#
#   expect_output NAME EXPECTED-FILE COMMAND...   exit 0, stdout equal to the file, no stderr
#   expect_success NAME COMMAND...               exit 0, no stderr
#   expect_failure NAME STATUS PATTERN COMMAND...
#       exit STATUS; the first line of stderr matches the extended regex PATTERN; no stdout.
#       Status 1 (a runtime failure) must also print exactly one line.
#   expect_json NAME EXPECTED-JSON COMMAND...    exit 0, stdout a JSON object whose numbers are
#       within 1e-9 of those in the file (tests/e2e/close-json); stderr is not checked
#   expect_warning NAME PATTERN COMMAND...       exit 0, stderr matches PATTERN
#   expect_no_file NAME PATH                     PATH does not exist
#   expect_same NAME FILE-A FILE-B               the files are byte-identical
#
# Commands run in the repository root with the tools first on PATH ($bin_dir: bin/, or
# $LOWRANK_BIN, which `make check SANITIZE=1` sets); $work is a scratch folder.
# The stdout and stderr of the last command are in $work/stdout and $work/stderr.

set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
bin_dir=${LOWRANK_BIN:-bin}
case $bin_dir in /*) ;; *) bin_dir=$root/$bin_dir ;; esac
export PATH="$bin_dir:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/lowrank-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# For tests that start Open MPI's mpirun: allowed as root, and, built with SANITIZE=1, Open
# MPI's own allocations (found by full stacks) are not taken for leaks of ours.
allow_open_mpi() {
    [ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0
    export LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$root/tests/e2e/open-mpi.lsan:print_suppressions=0
}

pass() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $1"
    shift
    for detail in "$@"; do echo "      $detail"; done
}

run_command() {
    "$@" >"$work/stdout" 2>"$work/stderr"
    status=$?
}

expect_success() {
    local name=$1
    shift
    run_command "$@"
    if [ "$status" -ne 0 ] || [ -s "$work/stderr" ]; then
        fail "$name" "command: $*" "status $status" "stderr: $(head -c 400 "$work/stderr")"
    else
        pass
    fi
}

expect_output() {
    local name=$1 expected=$2
    shift 2
    run_command "$@"
    if [ "$status" -ne 0 ] || [ -s "$work/stderr" ] || ! cmp -s "$expected" "$work/stdout"; then
        fail "$name" "command: $*" "status $status" "stderr: $(head -c 400 "$work/stderr")" \
            "diff: $(diff "$expected" "$work/stdout" | head -n 10)"
    else
        pass
    fi
}

expect_failure() {
    local name=$1 expected_status=$2 pattern=$3
    shift 3
    run_command "$@"
    local first_line lines
    first_line=$(head -n 1 "$work/stderr")
    lines=$(wc -l <"$work/stderr")
    if [ "$status" -ne "$expected_status" ] || ! grep -Eq -- "$pattern" <<<"$first_line" || [ -s "$work/stdout" ] ||
        { [ "$expected_status" -eq 1 ] && [ "$lines" -ne 1 ]; }; then
        fail "$name" "command: $*" "status $status (expected $expected_status)" \
            "stderr ($lines lines): $(head -c 400 "$work/stderr")" "expected pattern: $pattern" \
            "stdout: $(head -c 200 "$work/stdout")"
    else
        pass
    fi
}

expect_json() {
    local name=$1 expected=$2
    shift 2
    run_command "$@"
    local problem
    if [ "$status" -ne 0 ]; then
        fail "$name" "command: $*" "status $status" "stderr: $(head -c 400 "$work/stderr")"
    elif ! problem=$("$root/tests/e2e/close-json" "$expected" "$work/stdout" 2>&1); then
        fail "$name" "command: $*" "$problem"
    else
        pass
    fi
}

expect_warning() {
    local name=$1 pattern=$2
    shift 2
    run_command "$@"
    if [ "$status" -ne 0 ] || ! grep -Eq -- "$pattern" "$work/stderr"; then
        fail "$name" "command: $*" "status $status" "stderr: $(head -c 400 "$work/stderr")" "expected pattern: $pattern"
    else
        pass
    fi
}

expect_no_file() {
    if [ -e "$2" ]; then fail "$1" "$2 exists"; else pass; fi
    # No temporary file may be left beside it either.
    local leftovers
    leftovers=$(find "$(dirname "$2")" -maxdepth 1 -name ".$(basename "$2").tmp.*" | head -n 1)
    if [ -n "$leftovers" ]; then fail "$1" "temporary file left: $leftovers"; fi
}

expect_same() {
    if cmp -s "$2" "$3"; then pass; else fail "$1" "$2 and $3 differ"; fi
}

finish() {
    echo "$(basename "$0"): $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
