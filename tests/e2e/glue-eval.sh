#!/bin/bash
# glue-eval end to end: against scikit-learn and SciPy (fixtures made by
# tests/data/glue-eval/make-fixtures.py), every GLUE task's files, output forms, errors.
source "$(dirname "$0")/lib.sh"
d=tests/data/glue-eval

# --- Agreement with scikit-learn and SciPy (1e-9) ------------------------------------------
expect_json "binary labels" $d/binary.expected.json glue-eval --json --metric acc,f1,mcc,pearson,spearman $d/binary.gold $d/binary.pred
expect_json "multiclass labels" $d/multiclass.expected.json glue-eval --json --metric acc,mcc,f1 --positive dog $d/multiclass.gold $d/multiclass.pred
expect_json "regression with ties" $d/regression.expected.json glue-eval --json --metric pearson,spearman $d/regression.gold $d/regression.pred
expect_json "constant prediction: mcc 0" $d/constant-prediction.expected.json glue-eval --json --metric acc,mcc,f1 $d/constant-prediction.gold $d/constant-prediction.pred
expect_json "no positive example: f1 0" $d/no-positive.expected.json glue-eval --json --metric acc,f1,mcc $d/no-positive.gold $d/no-positive.pred
expect_warning "no positive example warns" "warning: f1 is ill-defined: the positive label '1' is neither" glue-eval --metric f1 $d/no-positive.gold $d/no-positive.pred

# --- Every GLUE task, from its own dev-file layout and a shuffled submission ---------------
expect_json "task cola (no header)" $d/cola.expected.json glue-eval --json --task cola $d/cola.dev.tsv $d/cola.submission.tsv
expect_json "task sst2" $d/sst2.expected.json glue-eval --json --task sst2 $d/sst2.dev.tsv $d/sst2.submission.tsv
expect_json "task mrpc (byte order mark, quotes)" $d/mrpc.expected.json glue-eval --json --task mrpc $d/mrpc.dev.tsv $d/mrpc.submission.tsv
expect_json "task stsb" $d/stsb.expected.json glue-eval --json --task stsb $d/stsb.dev.tsv $d/stsb.submission.tsv
expect_json "task qqp" $d/qqp.expected.json glue-eval --json --task qqp $d/qqp.dev.tsv $d/qqp.submission.tsv
expect_json "task mnli-m" $d/mnli-m.expected.json glue-eval --json --task mnli-m $d/mnli-m.dev_matched.tsv $d/mnli-m.submission.tsv
expect_json "task mnli-mm" $d/mnli-mm.expected.json glue-eval --json --task mnli-mm $d/mnli-mm.dev_mismatched.tsv $d/mnli-mm.submission.tsv
expect_json "task qnli" $d/qnli.expected.json glue-eval --json --task qnli $d/qnli.dev.tsv $d/qnli.submission.tsv
expect_json "task rte (label ids)" $d/rte.expected.json glue-eval --json --task rte $d/rte.dev.tsv $d/rte.submission.tsv
expect_json "task wnli" $d/wnli.expected.json glue-eval --json --task wnli $d/wnli.dev.tsv $d/wnli.submission.tsv
expect_json "task ax" $d/ax.expected.json glue-eval --json --task ax $d/ax.diagnostic-full.tsv $d/ax.submission.tsv
expect_json "task alias sts-b" $d/stsb.expected.json glue-eval --json --task sts-b $d/stsb.dev.tsv $d/stsb.submission.tsv

# --- Output forms, on a case worked by hand ----------------------------------------------
# gold 1 0 1 1 0, pred 1 0 0 1 1: TP 2, TN 1, FP 1, FN 1.
# acc 3/5; f1 2·2/(2·2+1+1) = 2/3; mcc (2·1 − 1·1)/sqrt(3·3·2·2) = 1/6.
printf '1\n0\n1\n1\n0\n' >"$work/gold"
printf '1\n0\n0\n1\n1\n' >"$work/pred"
printf 'acc\t0.600000\nf1\t0.666667\nmcc\t0.166667\n' >"$work/expected"
expect_output "text output" "$work/expected" glue-eval --metric acc,f1,mcc "$work/gold" "$work/pred"
printf 'acc\t0.60\n' >"$work/expected"
expect_output "--digits" "$work/expected" glue-eval --digits 2 "$work/gold" "$work/pred"
printf 'acc\t0.600000\n\ngold\\predicted\t0\t1\n0\t1\t1\n1\t1\t2\n' >"$work/expected"
expect_output "--confusion" "$work/expected" glue-eval --confusion "$work/gold" "$work/pred"
printf '{"rows":5,"metrics":{"acc":0.6,"mcc":0.16666666666666666}}\n' >"$work/expected"
expect_output "--json" "$work/expected" glue-eval --json --metric acc,mcc "$work/gold" "$work/pred"
printf 'acc\t0.600000\n' >"$work/expected"
expect_output "gold from stdin" "$work/expected" bash -c "glue-eval - '$work/pred' <'$work/gold'"
printf '1\r\n0\r\n1\r\n1\r\n0\r\n' >"$work/gold-crlf"
expect_output "CRLF lines" "$work/expected" glue-eval "$work/gold-crlf" "$work/pred"
printf '1.0\n0\n01\n1\n0.0\n' >"$work/gold-spelled"
expect_output "1, 1.0 and 01 are one label" "$work/expected" glue-eval "$work/gold-spelled" "$work/pred"
expect_success "-o writes the file" glue-eval -o "$work/metrics.tsv" "$work/gold" "$work/pred"
expect_same "-o holds the output" "$work/metrics.tsv" "$work/expected"
glue-eval --task wnli $d/wnli.dev.tsv $d/wnli.submission.tsv | head -n 1 >"$work/expected"
{ head -n 1 $d/wnli.submission.tsv; tail -n +2 $d/wnli.submission.tsv | sort -n; } >"$work/in-order.tsv"
expect_output "TSV columns in row order give what task mode gives" "$work/expected" glue-eval --gold-column label --pred-column 2 $d/wnli.dev.tsv "$work/in-order.tsv"

# --- Bootstrap intervals: seeded, independent of the thread count, around the value --------
glue-eval --task mrpc --bootstrap 300 --seed 7 --threads 1 $d/mrpc.dev.tsv $d/mrpc.submission.tsv >"$work/one-thread"
expect_output "bootstrap: same result on 2 threads" "$work/one-thread" glue-eval --task mrpc --bootstrap 300 --seed 7 --threads 2 $d/mrpc.dev.tsv $d/mrpc.submission.tsv
glue-eval --task mrpc --bootstrap 300 --seed 8 $d/mrpc.dev.tsv $d/mrpc.submission.tsv >"$work/other-seed"
if cmp -s "$work/one-thread" "$work/other-seed"; then fail "bootstrap: another seed gives other intervals"; else pass; fi
if awk -F'\t' 'NF != 4 || !($3 <= $2 && $2 <= $4 && $3 < $4) { bad = 1 } END { exit bad }' "$work/one-thread"; then
    pass
else
    fail "bootstrap: low <= value <= high on every line" "$(cat "$work/one-thread")"
fi

# --- Undefined correlations: NaN with a warning (as SciPy) --------------------------------
printf '1\n2\n3\n' >"$work/increasing"
printf '2\n2\n2\n' >"$work/constant"
printf 'pearson\tnan\nspearman\tnan\n' >"$work/expected"
expect_warning "constant predictions warn" "warning: pearson is undefined: the predictions are constant" glue-eval --metric pearson,spearman "$work/increasing" "$work/constant"
expect_output "constant predictions give nan" "$work/expected" glue-eval -q --metric pearson,spearman "$work/increasing" "$work/constant"

# --- Bad input: exit 1, one line naming the file (and line), no output file ---------------
printf '1\n0\n1\n' >"$work/three"
printf 'gj1\t1\t\tA.\ngj2\t0\t*\tB.\ngj3\t1\t\tC.\n' >"$work/cola.tsv"
printf 'gold_label\nentailment\nmaybe\n' >"$work/mnli.tsv"
printf '1\nabc\n0\n' >"$work/word"
printf '1\nnan\n0\n' >"$work/nan"
printf '1\n\n0\n' >"$work/blank"
printf '1\t0\n0\n1\n' >"$work/tab"
: >"$work/empty"
printf 'index\tprediction\n0\t1\n0\t1\n' >"$work/duplicate.tsv"
printf 'index\tprediction\n0\t1\n9\t1\n' >"$work/out-of-range.tsv"
printf 'index\tprediction\n0\t1\n' >"$work/missing.tsv"
printf 'index\tprediction\nx\t1\n1\t1\n' >"$work/bad-index.tsv"
printf 'index\tprediction\n0\tmaybe\n1\t1\n' >"$work/unknown-label.tsv"
printf '0\t1\n1\t1\n' >"$work/no-header.tsv"
printf 'label\tx\n1\n' >"$work/short.tsv"
expect_failure "row counts differ" 1 "different row counts: .*/gold has 5, .*/three has 3" glue-eval "$work/gold" "$work/three"
expect_failure "error leaves no output file" 1 "different row counts" glue-eval -o "$work/none.tsv" "$work/gold" "$work/three"
expect_no_file "no output file after an error" "$work/none.tsv"
expect_failure "not a number" 1 "/word:2: 'abc' in column 1 is not a number" glue-eval --metric pearson "$work/three" "$work/word"
expect_failure "NaN value" 1 "/nan:2: 'nan' in column 1 is not a finite number" glue-eval --metric spearman "$work/three" "$work/nan"
expect_failure "empty line" 1 "/blank:2: empty value" glue-eval "$work/three" "$work/blank"
expect_failure "a tab in a one-value file" 1 "/tab:1: holds a tab" glue-eval "$work/tab" "$work/three"
expect_failure "empty file" 1 "/empty: no rows" glue-eval "$work/empty" "$work/three"
expect_failure "missing file" 1 "/absent: No such file or directory" glue-eval "$work/absent" "$work/three"
expect_failure "a folder" 1 "$work: is a directory" glue-eval "$work" "$work/three"
expect_failure "unknown gold label" 1 "/mnli.tsv:3: unknown label 'maybe' for task mnli-m \(labels: entailment \(0\), neutral \(1\), contradiction \(2\)\)" glue-eval --task mnli-m "$work/mnli.tsv" $d/wnli.submission.tsv
expect_failure "unknown predicted label" 1 "/unknown-label.tsv:2: unknown label 'maybe' for task wnli" glue-eval --task wnli $d/wnli.dev.tsv "$work/unknown-label.tsv"
expect_failure "index given twice" 1 "/duplicate.tsv:3: index 0 is given twice \(first on line 2\)" glue-eval --task wnli $d/wnli.dev.tsv "$work/duplicate.tsv"
expect_failure "index out of range" 1 "/out-of-range.tsv:3: index 9 is out of range" glue-eval --task cola "$work/cola.tsv" "$work/out-of-range.tsv"
expect_failure "index missing" 1 "/missing.tsv: no prediction for index 1" glue-eval --task cola "$work/cola.tsv" "$work/missing.tsv"
expect_failure "index not a number" 1 "/bad-index.tsv:2: index 'x' is not a non-negative integer" glue-eval --task wnli $d/wnli.dev.tsv "$work/bad-index.tsv"
expect_failure "submission without header" 1 "/no-header.tsv: no column 'prediction'" glue-eval --task cola "$work/cola.tsv" "$work/no-header.tsv"
expect_failure "missing column" 1 "wnli.dev.tsv: no column 'nope' \(columns: index, sentence1, sentence2, label\)" glue-eval --gold-column nope --pred-column 2 $d/wnli.dev.tsv $d/wnli.submission.tsv
expect_failure "short row" 1 "/short.tsv:2: 1 field, but column 'x' is field 2" glue-eval --gold-column x --pred-column x "$work/short.tsv" "$work/short.tsv"
expect_failure "output folder missing" 1 "/absent/out.tsv: cannot create" glue-eval -o "$work/absent/out.tsv" "$work/gold" "$work/pred"

# --- Usage errors: exit 2 -----------------------------------------------------------------
expect_failure "unknown metric" 2 "unknown metric 'auc'" glue-eval --metric acc,auc "$work/gold" "$work/pred"
expect_failure "unknown task" 2 "unknown task 'squad'" glue-eval --task squad "$work/gold" "$work/pred"
expect_failure "--task with --metric" 2 "do not combine it with" glue-eval --task cola --metric acc "$work/gold" "$work/pred"
expect_failure "--confusion on regression" 2 "--confusion needs a classification task" glue-eval --confusion --task stsb $d/stsb.dev.tsv $d/stsb.submission.tsv
expect_failure "one operand" 2 "too few operands" glue-eval "$work/gold"
expect_failure "three operands" 2 "unexpected operand" glue-eval "$work/gold" "$work/pred" "$work/pred"
expect_failure "unknown option" 2 "unrecognised option '--bogus'" glue-eval --bogus "$work/gold" "$work/pred"
expect_failure "abbreviated option" 2 "unrecognised option '--metr'" glue-eval --metr acc "$work/gold" "$work/pred"
expect_failure "bad number" 2 "the argument \('many'\) for option '--threads' is invalid" glue-eval --threads many "$work/gold" "$work/pred"
expect_failure "digits out of range" 2 "--digits must be between 0 and 17" glue-eval --digits 40 "$work/gold" "$work/pred"
expect_failure "both from stdin" 2 "cannot both be standard input" glue-eval - -

finish
