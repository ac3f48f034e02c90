#!/bin/bash
# lora-train's data-parallel scaling under Open MPI, against PyTorch's DistributedDataParallel
# (lora-train-peer.py with 2 ranks: gloo on loopback). The training run of bench/lora-train.sh:
# its GPT-2-shaped model (model-init's "small"), a global batch of 16 windows of 128 tokens a
# step, AdamW with linear decay, clipping; LoRA r=8 on q and v, and full fine-tuning. One
# process takes the 16 windows in one pass; two ranks take 8 each (ours: mpirun -np 2 on TCP
# loopback, each rank bound to a core with 1 thread, unbound with 2), with 1 and 2 threads a
# rank. Tokens per second of the steps
# after the first two (ours from rank 0's log). Bytes a step: our MPI_Allreduce buffer
# (4 bytes per trainable parameter, each tensor padded to 64 bytes, and two extras), and what
# the loopback interface sent per step while our two ranks trained (both ranks, Open MPI's
# protocol included; other traffic on lo counts too, and the setup's is spread over the steps).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/../bin
out=$here/out/lora-train
steps=${STEPS:-12}
mkdir -p "$out"
[ -f "$out/small.safetensors" ] || "$bin/model-init" --arch gpt2 --preset small --seed 1 -o "$out/small.safetensors"
[ -f "$out/tokens.u16" ] || /usr/bin/python3 -c "
import numpy as np, sys
np.random.default_rng(1).integers(0, 8192, 1000000).astype('<u2').tofile(sys.argv[1])" "$out/tokens.u16"
launch=(mpirun -q --oversubscribe -np 2 --mca btl self,tcp --mca btl_tcp_if_include lo)
[ "$(id -u)" = 0 ] && launch+=(--allow-run-as-root)
sent_bytes() { awk '$1 == "lo:" { printf "%.0f\n", $10 }' /proc/net/dev; }
# Tokens per second after the first two steps, from a log.
rate() { awk -F'\t' -v steps="$steps" 'NR == 3 { start = $8 } END { printf "%.1f", 16 * 128 * (steps - 2) / ($8 - start) }' "$1"; }
peer() { OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$2 OPENBLAS_NUM_THREADS=$2 /usr/bin/python3 "$here/lora-train-peer.py" \
    "$1" "$out/tokens.u16" "$steps" 16 128 "$2" "$3" 2>/dev/null; }
ratio() { echo "$1 / $2" | bc -l; }

echo "training: $steps steps of a global batch of 16 x 128 tokens, tokens/s after 2 warm-up steps; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-6s %-4s | %8s %8s %6s | %8s %8s %6s | %6s %6s | %10s %11s\n' method thr "ours 1" "ours 2" speed "torch 1" "torch 2" speed \
    "1 rank" "2 rank" "allreduce" "sent B/step"
for method in lora full; do
    options=""
    [ $method = lora ] && options="--rank 8 --targets q,v"
    target=$out/trained.safetensors
    [ $method = lora ] && target=$out/adapter
    for threads in 1 2; do
        run=(--model "$out/small.safetensors" --method $method $options --steps "$steps" --context 128 --threads "$threads"
            "$out/tokens.u16")
        rm -rf "$out/adapter" "$out/trained.safetensors"
        "$bin/lora-train" "${run[@]}" --batch-size 16 --log "$out/one.tsv" -o "$target" 2>"$out/one.err"
        trainable=$(sed -n 's/^trainable params: \([0-9,]*\) .*/\1/p' "$out/one.err" | tr -d ,)
        rm -rf "$out/adapter" "$out/trained.safetensors"
        before=$(sent_bytes)
        binding=core
        [ "$threads" -gt 1 ] && binding=none
        "${launch[@]}" --bind-to $binding "$bin/lora-train" -q "${run[@]}" --batch-size 8 --log "$out/two.tsv" -o "$target"
        after=$(sent_bytes)
        one=$(rate "$out/one.tsv") two=$(rate "$out/two.tsv")
        peer_one=$(peer $method "$threads" 1) peer_two=$(peer $method "$threads" 2)
        printf '%-6s %-4s | %8.0f %8.0f %5.2fx | %8.0f %8.0f %5.2fx | %5.2fx %5.2fx | %10d %11.0f\n' $method "$threads" \
            "$one" "$two" "$(ratio "$two" "$one")" "$peer_one" "$peer_two" "$(ratio "$peer_two" "$peer_one")" \
            "$(ratio "$one" "$peer_one")" "$(ratio "$two" "$peer_two")" $((4 * (trainable + 2))) "$(ratio "($after - $before)" "$steps")"
    done
done
echo "speed: 2 ranks over 1 process, same threads a rank (2 ranks x 2 threads oversubscribe $(nproc) cores);"
echo "1 rank, 2 rank: ours over PyTorch's (goal: >= 1.5x); allreduce: bytes of the buffer (a lower bound: padding left out)"
