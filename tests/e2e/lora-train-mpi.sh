#!/bin/bash
# lora-train under Open MPI: two ranks on loopback against one process with the same global
# batch (LoRA with dropout, full fine-tuning of a classifier, CLIP's InfoNCE), rank 0 alone
# speaking and writing, failures told once, a rank killed with SIGKILL and the run resumed.
source "$(dirname "$0")/lib.sh"
n=tests/data/nn
t=tests/data/train
tiny=$n/gpt2-lm.safetensors
# Two ranks on this host over TCP loopback (as across hosts), quiet about Open MPI's advice.
launch=(mpirun --oversubscribe -np 2 --mca btl self,tcp --mca btl_tcp_if_include lo)
allow_open_mpi
two() { "${launch[@]}" -q "$@"; }
# Every value of column $3 of two TSV logs within 1e-5 (empty cells must match).
same_column() {
    paste <(awk -F'\t' -v c="$3" 'NR > 1 { print ($c == "" ? "-" : $c) }' "$1") \
        <(awk -F'\t' -v c="$3" 'NR > 1 { print ($c == "" ? "-" : $c) }' "$2") |
        awk '{ if (($1 == "-") != ($2 == "-")) bad = 1; else if ($1 != "-") { d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5) bad = 1 }; rows++ }
             END { exit bad || rows == 0 }'
}

# --- Two ranks of --accumulate M agree with one process of --accumulate 2M ------------------
common=(-q --threads 1 --model $tiny --seed 3 --rank 4 --targets q,v,o --lora-dropout 0.1 --lr 5e-3 --warmup 3
    --steps 24 --batch-size 2 --context 15 --dev $t/lm.u16 --eval-every 8)
expect_success "LoRA with dropout, one process" lora-train "${common[@]}" --accumulate 4 --log "$work/one.tsv" -o "$work/one" $t/lm.u16
expect_success "  two ranks" two lora-train "${common[@]}" --accumulate 2 --log "$work/two.tsv" -o "$work/two" $t/lm.u16
expect_success "  the same adapter to 1e-5" tests/e2e/close-safetensors "$work/one/adapter_model.safetensors" "$work/two/adapter_model.safetensors" 1e-5
same_column "$work/one.tsv" "$work/two.tsv" 3 && pass || fail "  the same losses"
same_column "$work/one.tsv" "$work/two.tsv" 6 && [ "$(awk -F'\t' 'NR > 1 && $6 != ""' "$work/two.tsv" | wc -l)" = 3 ] && pass ||
    fail "  the same dev losses, evaluated by rank 0"
expect_same "  the same adapter config" "$work/one/adapter_config.json" "$work/two/adapter_config.json"

# A small learning rate: the key biases' gradients are 0 but for rounding, which AdamW
# turns into steps of ±lr whatever the order of the additions.
c=$n/gpt2-classify
classify=(-q --threads 1 --model $c.safetensors --task classify --method full --lr 1e-3 --steps 4 --batch-size 1
    --dev $c.ids.npy --dev $c.targets.npy --metric loss)
expect_success "full fine-tuning of a classifier, one process" lora-train "${classify[@]}" --accumulate 2 --log "$work/c1.tsv" -o "$work/c1.safetensors" $c.ids.npy $c.targets.npy
expect_success "  two ranks" two lora-train "${classify[@]}" --log "$work/c2.tsv" -o "$work/c2.safetensors" $c.ids.npy $c.targets.npy
expect_success "  the same tensors to 1e-5" tests/e2e/close-safetensors "$work/c1.safetensors" "$work/c2.safetensors" 1e-5
same_column "$work/c1.tsv" "$work/c2.tsv" 6 && pass || fail "  the same dev loss"

# CLIP's InfoNCE takes its negatives within a forward pass's batch, as with --accumulate.
clip=(-q --threads 1 --model $n/clip.safetensors --task clip --lr 1e-2 --steps 3 --batch-size 2)
expect_success "CLIP InfoNCE, one process" lora-train "${clip[@]}" --accumulate 2 -o "$work/clip1" $n/clip.patches.npy $n/clip.ids.npy
expect_success "  two ranks" two lora-train "${clip[@]}" -o "$work/clip2" $n/clip.patches.npy $n/clip.ids.npy
expect_success "  the same adapter to 1e-5" tests/e2e/close-safetensors "$work/clip1/adapter_model.safetensors" "$work/clip2/adapter_model.safetensors" 1e-5

# --- Rank 0 speaks and writes ------------------------------------------------------------
two lora-train --threads 1 --model $tiny --steps 2 --context 15 -o "$work/speak" $t/lm.u16 >"$work/stdout" 2>"$work/stderr"
[ $? = 0 ] && [ "$(wc -l <"$work/stderr")" = 1 ] && grep -q "^trainable params: " "$work/stderr" && pass ||
    fail "the parameter counts printed once" "$(head -c 300 "$work/stderr")"
expect_failure "the trained tensors to standard output (a terminal under mpirun)" 2 "^lora-train: under mpirun, give -o FILE" two lora-train "${classify[@]}" -o - $c.ids.npy $c.targets.npy

# --- Failures are told once -------------------------------------------------------------
expect_failure "a missing file, told by one rank" 1 "^lora-train: .*/missing.u16: No such file or directory$" two lora-train --model $tiny -o "$work/missing" "$work/missing.u16"
expect_no_file "  no output" "$work/missing"
# mpirun's "A : B" form gives each rank its own command line.
one_each() { "${launch[@]}" -q -np 1 lora-train "$@" : -np 1 lora-train "${rank1[@]}"; }
setup=(-q --threads 1 --model $tiny --steps 2 --context 15 -o "$work/each")
rank1=("${setup[@]}" "$work/missing.u16")
expect_failure "a file rank 1 lacks, told by rank 1" 1 "^lora-train: rank 1 on [^:]+: .*/missing.u16: No such file or directory$" one_each "${setup[@]}" $t/lm.u16
head -c 4000 $t/lm.u16 >"$work/short.u16"
rank1=("${setup[@]}" --lr 0.01 $t/lm.u16)
expect_failure "other settings on rank 1" 1 "^lora-train: rank 1 on [^:]+: settings differ from rank 0's \(lr was 0.0002, is now 0.01\): every rank runs the same command on the same files$" one_each "${setup[@]}" $t/lm.u16
rank1=("${setup[@]}" "$work/short.u16")
expect_failure "other data on rank 1" 1 "^lora-train: rank 1 on [^:]+: settings differ from rank 0's \(data was " one_each "${setup[@]}" $t/lm.u16
expect_no_file "  no output" "$work/each"
rank1=("${setup[@]}" --rank 0 $t/lm.u16)
expect_failure "a usage error of rank 1's own" 1 "^lora-train: rank 1 on [^:]+: --rank must be at least 1$" one_each "${setup[@]}" $t/lm.u16
expect_failure "a usage error, told once" 2 "^lora-train: --rank must be at least 1$" two lora-train --model $tiny --rank 0 -o "$work/usage" $t/lm.u16
[ "$(grep -c "must be at least" "$work/stderr")" = 1 ] && pass || fail "  one message" "$(cat "$work/stderr")"
expect_failure "an unknown option, told once" 2 "^lora-train: unrecognised option '--bogus'$" two lora-train --bogus --model $tiny -o "$work/usage" $t/lm.u16
[ "$(grep -c "unrecognised" "$work/stderr")" = 1 ] && pass || fail "  one message" "$(cat "$work/stderr")"
expect_success "--version, printed once" two lora-train --version
[ "$(grep -c "^lora-train (lowrank) " "$work/stdout")" = 1 ] && pass || fail "  one line" "$(cat "$work/stdout")"
expect_failure "a loss that overflows stops every rank, told once" 1 "^lora-train: step [0-9]+: the (loss|gradient norm) is (nan|inf|-nan); training stopped \(no checkpoint was written\)$" two lora-train -q --model $tiny --method full --steps 6 --lr 1e30 --max-grad-norm 0 --context 15 -o "$work/nan.safetensors" $t/lm.u16
expect_no_file "  no output" "$work/nan.safetensors"

# --- A rank killed with SIGKILL ends the job; the last checkpoint resumes -----------------
run=(-q --threads 1 --model $tiny --seed 5 --rank 4 --lr 5e-3 --steps 300 --batch-size 2 --context 15)
expect_success "300 steps on two ranks, never stopped" two lora-train "${run[@]}" -o "$work/whole" $t/lm.u16
"${launch[@]}" lora-train "${run[@]}" --checkpoint-dir "$work/ck" --checkpoint-every 1 -o "$work/killed" $t/lm.u16 2>"$work/killed.err" &
job=$!
while [ ! -e "$work/ck/checkpoint.safetensors" ] && kill -0 $job 2>/dev/null; do sleep 0.01; done
for pid in $(pgrep -P $job); do
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && kill -9 "$pid"
done
wait $job
status=$?
[ $status != 0 ] && grep -Eq "process rank 1 .* exited on signal 9" "$work/killed.err" && pass ||
    fail "rank 1 killed: the job ends, and says which rank" "status $status" "$(head -c 600 "$work/killed.err")"
expect_no_file "  no output" "$work/killed"
cp -r "$work/ck" "$work/ck-one"
expect_success "  resumed on two ranks" two lora-train "${run[@]}" --checkpoint-dir "$work/ck" --resume -o "$work/killed" $t/lm.u16
expect_same "    the adapter of the run never stopped" "$work/whole/adapter_model.safetensors" "$work/killed/adapter_model.safetensors"
expect_success "  resumed by one process, --accumulate 2" lora-train "${run[@]}" --accumulate 2 --checkpoint-dir "$work/ck-one" --resume -o "$work/killed-one" $t/lm.u16
expect_success "    the same adapter to 1e-5" tests/e2e/close-safetensors "$work/whole/adapter_model.safetensors" "$work/killed-one/adapter_model.safetensors" 1e-5
expect_failure "a checkpoint of other settings, told once" 1 "checkpoint.safetensors: written by a run with other settings \(accumulate was 2, is now 4\); resume with the same ones$" two lora-train "${run[@]}" --accumulate 2 --checkpoint-dir "$work/ck" --resume -o "$work/other" $t/lm.u16

echo "lora-train-mpi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
