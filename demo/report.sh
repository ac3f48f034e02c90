#!/bin/bash
# Writes demo/out/REPORT.md from the stages' outputs.
set -eu
out=$1
categories=$2

count() { tail -n +2 "$1" | wc -l; }
metric() { awk -F'\t' -v name="$2" '$1 == name { printf "%.4f", $2 }' "$1"; }

cat <<MD
# Demo report

Machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d).

## The task: which fortune category?

Fortunes from Debian's \`fortunes\` package, categories: $categories.
Split with a fixed seed into GLUE-style TSV files (\`sentence<TAB>label\`).

| split | examples |
| --- | ---: |
| train | $(count "$out/task/train.tsv") |
| dev | $(count "$out/task/dev.tsv") |
| test | $(count "$out/task/test.tsv") |

Labels in the training split:

| label | examples |
| --- | ---: |
$(tail -n +2 "$out/task/train.tsv" | cut -f2 | sort | uniq -c | awk '{ printf "| %s | %d |\n", $2, $1 }')

## Results (glue-eval)

| method | dev accuracy | dev MCC | test accuracy | test MCC |
| --- | ---: | ---: | ---: | ---: |
| majority class | $(metric "$out/baseline/dev.metrics" acc) | $(metric "$out/baseline/dev.metrics" mcc) | $(metric "$out/baseline/test.metrics" acc) | $(metric "$out/baseline/test.metrics" mcc) |
MD
