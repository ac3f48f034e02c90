#!/bin/bash
# One training step (forward, LM loss, backward, AdamW) of a GPT-2-shaped model: 4 layers,
# width 256, 4 heads, context 128, vocabulary 8192, batch 16; full fine-tuning and LoRA
# r=8 on q and v; ours (build/bench/train-step) against the same model in PyTorch
# (train-step-peer.py), on 1 and 2 threads. Each figure is its own process, so peak memory
# (maximum resident set) is that configuration's. The peer gets its thread count through
# torch.set_num_threads, OMP_NUM_THREADS and OPENBLAS_NUM_THREADS, and OMP_WAIT_POLICY=PASSIVE
# (busy-waiting OpenMP threads make PyTorch slower on 2 threads than on 1). FLOP/s count the
# model's nominal multiply-adds (train-step.cpp) against sgemm's peak measured here.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ours=${TRAIN_STEP:-$here/../build/bench/train-step}
steps=${STEPS:-10}
[ -x "$ours" ] || make -C "$here/.." build/bench/train-step >/dev/null

echo "ours: $("$ours" backend); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; $(nproc) cores"
echo "$steps timed steps after 2 warm-up steps; %peak: the model's nominal FLOP/s (attention over the full T×T square) over sgemm's"
printf '%-7s %-4s %8s %10s %9s %9s %10s %9s %8s %8s\n' method thr "sgemm" "ours tok/s" "ours MB" "%peak" "torch tok/s" "torch MB" "speed" "memory"
for threads in 1 2; do
    peak=$("$ours" sgemm "$threads")
    for method in full lora; do
        read -r our_rate our_memory our_gflops < <("$ours" "$method" "$threads" "$steps")
        read -r peer_rate peer_memory < <(OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
            /usr/bin/python3 "$here/train-step-peer.py" "$method" "$threads" "$steps")
        printf '%-7s %-4s %8.1f %10.0f %9.0f %8.0f%% %10.0f %9.0f %7.2fx %7.2fx\n' "$method" "$threads" "$peak" \
            "$our_rate" "$our_memory" "$(echo "100 * $our_gflops / $peak" | bc -l)" "$peer_rate" "$peer_memory" \
            "$(echo "$our_rate / $peer_rate" | bc -l)" "$(echo "$our_memory / $peer_memory" | bc -l)"
    done
done
echo "speed: ours/PyTorch tokens per second (goal: >= 1.2x full, >= 1.5x LoRA); memory: ours/PyTorch peak (goal: <= 0.5x)"
