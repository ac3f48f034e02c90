#!/bin/bash
# lora-train against the same training run in PyTorch (lora-train-peer.py): the GPT-2-shaped
# model of the training-step benchmark (model-init's "small": 4 layers, width 256, 4 heads,
# context 128, vocabulary 8192), batch 16 random windows of a token stream, AdamW with
# linear decay, clipping; LoRA r=8 on q and v, the same and on the token embedding (lora-wte),
# and full fine-tuning; 1 and 2 threads. Tokens
# per second of the steps after the first two (ours from lora-train's log), and the peak
# memory (maximum resident set, /usr/bin/time) of the whole run, loading included. The peer
# gets its threads through torch.set_num_threads, OMP_NUM_THREADS and OPENBLAS_NUM_THREADS,
# with OMP_WAIT_POLICY=PASSIVE (see train-step.sh).
# Then the LoRA paper's latency table in miniature (adapter-latency.cpp): one forward pass at
# batch 1, 16, 32 with LoRA merged against Houlsby's and Lin's adapters.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/../bin
latency=${ADAPTER_LATENCY:-$here/../build/bench/adapter-latency}
out=$here/out/lora-train
steps=${STEPS:-12}
mkdir -p "$out"
[ -x "$latency" ] || make -C "$here/.." build/bench/adapter-latency >/dev/null
[ -f "$out/small.safetensors" ] || "$bin/model-init" --arch gpt2 --preset small --seed 1 -o "$out/small.safetensors"
[ -f "$out/tokens.u16" ] || /usr/bin/python3 -c "
import numpy as np, sys
np.random.default_rng(1).integers(0, 8192, 1000000).astype('<u2').tofile(sys.argv[1])" "$out/tokens.u16"

echo "training: $steps steps of 16 x 128 tokens, tokens/s after 2 warm-up steps; peak: maximum resident set; $(nproc) cores"
printf '%-8s %-4s %10s %9s %11s %9s %8s %8s\n' method thr "ours tok/s" "ours MB" "torch tok/s" "torch MB" speed memory
for threads in 1 2; do
    for method in lora lora-wte full; do
        case $method in
            lora) options="--method lora --rank 8 --targets q,v" target=$out/adapter ;;
            lora-wte) options="--method lora --rank 8 --targets q,v,wte" target=$out/adapter ;;
            full) options="--method full" target=$out/trained.safetensors ;;
        esac
        rm -rf "$out/adapter" "$out/trained.safetensors"
        our_memory=$( { /usr/bin/time -f %M "$bin/lora-train" -q --model "$out/small.safetensors" $options \
            --steps "$steps" --batch-size 16 --context 128 --threads "$threads" --log "$out/log.tsv" -o "$target" \
            "$out/tokens.u16"; } 2>&1 | tail -n 1)
        our_rate=$(awk -F'\t' -v steps="$steps" 'NR == 3 { start = $8 } END { printf "%.1f", 16 * 128 * (steps - 2) / ($8 - start) }' "$out/log.tsv")
        read -r peer_rate peer_memory < <( { OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
            /usr/bin/time -f %M /usr/bin/python3 "$here/lora-train-peer.py" $method "$out/tokens.u16" "$steps" 16 128 "$threads"; } 2>&1 | tr '\n' ' '; echo)
        printf '%-8s %-4s %10.0f %9.0f %11.0f %9.0f %7.2fx %7.2fx\n' $method "$threads" "$our_rate" "$(echo "$our_memory / 1024" | bc -l)" \
            "$peer_rate" "$(echo "$peer_memory / 1024" | bc -l)" "$(echo "$our_rate / $peer_rate" | bc -l)" \
            "$(echo "$our_memory / $peer_memory" | bc -l)"
    done
done
echo "speed: ours/PyTorch tokens per second (goal: >= 1.5x); memory: ours/PyTorch peak (goal: <= 0.5x)"
echo
echo "inference latency of one forward pass (128 tokens a row), median ms; overhead against LoRA merged"
printf '%-4s %-6s %11s %19s %19s %19s\n' thr batch "LoRA merged" "Adapter^H" "Adapter^L" "LoRA unmerged"
for threads in 1 2; do
    "$latency" "$threads" | while read -r batch merged houlsby houlsby_pct lin lin_pct lora lora_pct; do
        printf '%-4s %-6s %11s %10s (%+5.1f%%) %10s (%+5.1f%%) %10s (%+5.1f%%)\n' "$threads" "$batch" "$merged" \
            "$houlsby" "$houlsby_pct" "$lin" "$lin_pct" "$lora" "$lora_pct"
    done
done
