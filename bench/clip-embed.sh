#!/bin/bash
# CLIP embeddings of a ViT-B/32-shaped model (model-init --preset clip-vit-b-32: vision
# 12 × 768, 49 patches of 32×32; text 12 × 512, context 77): images per second of the
# image tower and texts per second of the text tower, in batches of 32, on 1 and 2
# threads; ours in float32 and with --precision bf16, against the same model in PyTorch
# float32 (clip-embed-peer.py) in the same run. Our rate leaves out loading: it is the
# difference between a run of 1 + BATCHES batches and a run of 1. Each figure is the best
# of ROUNDS (the machine may be shared with other work). The peer gets its
# thread count through torch.set_num_threads, OMP_NUM_THREADS and OPENBLAS_NUM_THREADS,
# and OMP_WAIT_POLICY=PASSIVE; both sgemms are OpenBLAS with the same OPENBLAS_CORETYPE.
# Texts are random ids with the end token at position 77, so every position counts.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/../bin
out=$here/out/clip-embed
batches=${BATCHES:-2}
rounds=${ROUNDS:-3}
mkdir -p "$out"
[ -f "$out/model.safetensors" ] || "$bin/model-init" --arch clip --preset clip-vit-b-32 --seed 1 -o "$out/model.safetensors"
/usr/bin/python3 - "$out" "$batches" <<'PY'
import numpy as np, sys
out, batches = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
for count in (32, 32 * (1 + batches)):
    np.save(f"{out}/patches-{count}.npy", rng.standard_normal((count, 49, 3072), dtype=np.float32))
    ids = rng.integers(0, 49406, (count, 77), dtype=np.int32)
    ids[:, 0], ids[:, -1] = 49406, 49407
    np.save(f"{out}/ids-{count}.npy", ids)
PY
seconds() {  # the shortest of ROUNDS runs of a command, in seconds
    local start end best=""
    for _ in $(seq "$rounds"); do
        start=$(date +%s%N)
        "$@" >/dev/null
        end=$(date +%s%N)
        if [ -z "$best" ] || [ $((end - start)) -lt "$best" ]; then best=$((end - start)); fi
    done
    echo "$best / 1000000000" | bc -l
}
ours() {  # ours TOWER THREADS PRECISION -> items per second
    local option=--patches input=patches
    [ "$1" = texts ] && option=--ids input=ids
    local short long
    short=$(seconds "$bin/clip-embed" -q --model "$out/model.safetensors" "$option" "$out/$input-32.npy" --threads "$2" --precision "$3" -o /dev/null)
    long=$(seconds "$bin/clip-embed" -q --model "$out/model.safetensors" "$option" "$out/$input-$((32 * (1 + batches))).npy" --threads "$2" --precision "$3" -o /dev/null)
    echo "32 * $batches / ($long - $short)" | bc -l
}
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; $(nproc) cores; batches of 32, $batches timed, best of $rounds; items/s"
printf '%-7s %-4s %10s %10s %10s %9s %9s\n' tower thr "torch f32" "ours f32" "ours bf16" "f32 ratio" "bf16 ratio"
for tower in images texts; do
    for threads in 1 2; do
        peer=$(OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
            /usr/bin/python3 "$here/clip-embed-peer.py" "$out/model.safetensors" "$tower" "$threads" "$batches" "$rounds")
        f32=$(ours "$tower" "$threads" float32)
        bf16=$(ours "$tower" "$threads" bf16)
        printf '%-7s %-4s %10.2f %10.2f %10.2f %8.2fx %8.2fx\n' "$tower" "$threads" "$peer" "$f32" "$bf16" \
            "$(echo "$f32 / $peer" | bc -l)" "$(echo "$bf16 / $peer" | bc -l)"
    done
done
echo "goals: float32 >= 1.0x PyTorch on 1 thread, >= 1.1x on 2; bf16 >= 1.8x PyTorch float32"
