#!/bin/bash
# Every tool has a man page that lists the same options as its --help, and the commands in
# the page's EXAMPLES section run. Each example runs in a scratch folder prepared by
# tests/e2e/man-examples/TOOL.setup, which puts there the files the examples name.
source "$(dirname "$0")/lib.sh"
# Some examples start ranks with Open MPI's mpirun.
allow_open_mpi

# The long options of a --help text, and of a man page's OPTIONS section.
help_options() { "$1" --help | grep -Eo '^ +(-[a-z], )?--[a-z0-9-]+' | grep -Eo -- '--[a-z0-9-]+' | sort -u; }
page_options() {
    sed -n '/^\.Sh OPTIONS/,/^\.Sh /p' "$1" | grep -E '^\.It Fl' | grep -Eo 'Fl -[a-z0-9-]+' |
        sed 's/^Fl /-/' | sort -u
}
# The commands of the EXAMPLES section: the lines that start with "$ ".
page_examples() { sed -n '/^\.Sh EXAMPLES/,/^\.Sh /p' "$1" | sed -n 's/^\$ //p'; }

for tool in "$bin_dir"/*; do
    name=$(basename "$tool")
    page=man/$name.1
    if [ ! -f "$page" ]; then
        fail "$name has a man page" "no $page"
        continue
    fi
    pass
    if diff <(help_options "$tool") <(page_options "$page") >"$work/options.diff"; then
        pass
    else
        fail "$name: --help and $page list the same options" "$(cat "$work/options.diff")"
    fi
    setup=tests/e2e/man-examples/$name.setup
    examples=$(page_examples "$page")
    [ -n "$examples" ] || { fail "$name: $page has examples"; continue; }
    while IFS= read -r example; do
        folder=$(mktemp -d "$work/example.XXXXXX")
        if [ -f "$setup" ]; then (cd "$folder" && bash "$root/$setup" "$root") || fail "$setup failed"; fi
        if (cd "$folder" && bash -c "set -o pipefail; $example" >"$work/example.out" 2>&1); then
            pass
        else
            fail "$name: example runs: $example" "$(head -c 400 "$work/example.out")"
        fi
    done <<<"$examples"
done

finish
