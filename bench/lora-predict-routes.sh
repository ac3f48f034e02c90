#!/bin/bash
# lora-predict serving several adapters in one batch: 32 rows over 4 adapters (row i for
# adapter i mod 4) in one run with --route, against 4 runs of one adapter each on its own 8
# rows, for classification (a GPT-2 124M classifier, rows of 32 tokens, adapters with score
# heads) and for generation (the GPT-2 124M language model, prompts of 8 tokens, 16 new
# tokens each); and one adapter unmerged (--adapter) against the same adapter merged into
# the model by lora-merge, on the 32 rows. Models from model-init, adapters and inputs from
# bench/lora-predict-routes-inputs.py (ranks 4 to 16 on c_attn, two also on the MLP). Each
# figure is the best wall time of $REPEATS runs (default 3), processes and loading included.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$here/out/lora-predict-routes
bin=$here/../bin
threads=${THREADS:-$(nproc)}
repeats=${REPEATS:-3}
if [ ! -f "$out/routes.txt" ]; then
    mkdir -p "$out"
    "$bin/model-init" --arch gpt2 --preset gpt2 --labels 2 --seed 1 -o "$out/classifier.safetensors"
    "$bin/model-init" --arch gpt2 --preset gpt2 --seed 1 -o "$out/lm.safetensors"
    /usr/bin/python3 "$here/lora-predict-routes-inputs.py" "$out" 32 32 8 768 12
    "$bin/lora-merge" -q "$out/classifier.safetensors" "$out/classify-1" -o "$out/merged.safetensors"
fi
cat "$out"/*.safetensors >/dev/null  # into the page cache, for every contender alike
cd "$out"

# best COMMAND...: "WALL CPU", the best wall time and the best CPU time (user + system, all
# threads) of $repeats runs, in seconds. CPU time says more than wall time on a busy machine.
best() {
    local walls="" cpus=""
    for _ in $(seq "$repeats"); do
        /usr/bin/time -f "%e %U %S" -o time "$@" >/dev/null
        read -r wall user system <time
        walls="$walls $wall"
        cpus="$cpus $(echo "$user + $system" | bc)"
    done
    echo "$(printf '%s\n' $walls | sort -g | head -n 1) $(printf '%s\n' $cpus | sort -g | head -n 1)"
}
predict() { "$bin/lora-predict" --threads "$threads" -q "$@"; }
# separate MODEL ADAPTERS INPUT OPTIONS...: a run per adapter (ADAPTERS-K) on its rows (INPUT-K.npy)
separate() {
    local model=$1 adapters=$2 input=$3
    shift 3
    for k in 0 1 2 3; do predict --model "$model" --adapter "$adapters-$k" "$@" "$input-$k.npy" -o "separate-$k"; done
}
# routed MODEL ADAPTERS INPUT OPTIONS...: one run, the rows of INPUT.npy routed by routes.txt
routed() {
    local model=$1 adapters=$2 input=$3
    shift 3
    predict --model "$model" --adapter a0="$adapters-0" --adapter a1="$adapters-1" --adapter a2="$adapters-2" \
        --adapter a3="$adapters-3" --route routes.txt "$@" "$input.npy" -o routed
}
export -f predict separate routed
export bin threads

generation="--generate 16 --stop-id -1"
classify_routed=$(best bash -c "routed classifier.safetensors classify ids")
classify_separate=$(best bash -c "separate classifier.safetensors classify ids")
generate_routed=$(best bash -c "routed lm.safetensors lm prompts $generation")
generate_separate=$(best bash -c "separate lm.safetensors lm prompts $generation")
unmerged=$(best bash -c "predict --model classifier.safetensors --adapter classify-1 ids.npy -o single")
merged=$(best bash -c "predict --model merged.safetensors ids.npy -o single")

ratio() { echo "$1 / $2" | bc -l; }
line() { printf '%-64s %6.2f s  %6.2f s CPU\n' "$1" $2; }
echo "GPT-2 124M, $threads threads, best of $repeats runs; $(uptime | sed 's/.*load/load/')"
line "classify 32 rows x 32 tokens, 4 adapters, one routed batch" "$classify_routed"
line "classify the same rows in 4 runs, one adapter each" "$classify_separate"
line "generate 16 tokens for 32 prompts, 4 adapters, one routed batch" "$generate_routed"
line "generate the same in 4 runs, one adapter each" "$generate_separate"
line "classify 32 rows, one adapter (r 16, c_attn + MLP), unmerged" "$unmerged"
line "classify 32 rows, the same adapter merged by lora-merge" "$merged"
wall() { echo "${1% *}"; }
cpu() { echo "${1#* }"; }
printf 'routed vs separate runs: classification %.2fx (CPU %.2fx), generation %.2fx (CPU %.2fx) (goal: at least 2x)\n' \
    "$(ratio "$(wall "$classify_separate")" "$(wall "$classify_routed")")" \
    "$(ratio "$(cpu "$classify_separate")" "$(cpu "$classify_routed")")" \
    "$(ratio "$(wall "$generate_separate")" "$(wall "$generate_routed")")" \
    "$(ratio "$(cpu "$generate_separate")" "$(cpu "$generate_routed")")"
printf 'one adapter unmerged: %+.1f%% of the merged model'"'"'s time (CPU %+.1f%%)\n' \
    "$(echo "100 * ($(wall "$unmerged") / $(wall "$merged") - 1)" | bc -l)" \
    "$(echo "100 * ($(cpu "$unmerged") / $(cpu "$merged") - 1)" | bc -l)"
