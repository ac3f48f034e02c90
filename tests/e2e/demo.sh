#!/bin/bash
# The demo's whole pipeline on its quick settings (`make demo-quick`): every stage runs, the
# report has its tables and plots, merged and unmerged predictions agree, and a stage made
# again gives the same bytes.
source "$(dirname "$0")/lib.sh"

out=$work/demo
demo() { make -s -C demo -j2 QUICK=1 OUT="$out" BIN="$bin_dir" "$@"; }

run_command demo
if [ "$status" -ne 0 ]; then
    fail "make demo-quick" "status $status" "stderr: $(tail -n 5 "$work/stderr")"
    finish
    exit
fi
pass
for section in "## 1. Data" "## 2. Pre-training" "## 3. Methods" "the paper's Table 5" "## 4. Merging" \
        "## 5. Inference latency" "## 6. CLIP"; do
    expect_success "the report has '$section'" grep -qF "$section" "$out/REPORT.md"
done
for plot in loss accuracy pretrain clip patches; do
    expect_success "the $plot plot is a PNG" bash -c "file '$out/report/$plot.png' | grep -q 'PNG image data'"
done
# Every run's row: a parameter count and four metrics.
expect_success "19 runs in the results" test "$(tail -n +2 "$out/report/results.tsv" | wc -l)" -eq 19
expect_success "every result is complete" awk -F'\t' \
    'NR > 1 && (NF != 6 || $2 !~ /^[0-9]+$/ || $3 !~ /^[0-9.]+$/ || $5 !~ /^[0-9.]+$/) { exit 1 }' "$out/report/results.tsv"
expect_success "LoRA r = 8 trains more than r = 1, under a tenth of full" awk -F'\t' \
    '$1 == "lora-r1" { r1 = $2 } $1 == "lora-r8" { r8 = $2 } $1 == "full" { full = $2 } END { exit !(r8 > r1 && r8 < full / 10) }' \
    "$out/report/results.tsv"
expect_success "merged and unmerged: the same labels" awk -F'\t' 'NR == 2 { exit !($2 == 0) }' "$out/merge/agreement.tsv"
expect_success "merged and unmerged: logits within 1e-4" awk -F'\t' 'NR == 2 { exit !($3 < 1e-4) }' "$out/merge/agreement.tsv"
expect_success "the latency table: batch 1, 16 and 32" test "$(cut -f1 "$out/latency.tsv" | tr '\n' ' ')" = "batch 1 16 32 "

# Seeded: a stage's output removed and made again has the same bytes.
for target in methods/lora-r8/trained methods/adapter-h/test.predictions.tsv clip/trained.safetensors; do
    file=$out/$target
    [ -d "$file" ] && file=$file/adapter_model.safetensors
    cp "$file" "$work/first"
    rm -rf "${out:?}/$target"
    run_command demo "$out/$target"
    expect_same "$target: the same bytes again" "$work/first" "$file"
done

finish
