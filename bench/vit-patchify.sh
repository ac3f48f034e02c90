#!/bin/bash
# vit-patchify against Pillow + NumPy (the path of Hugging Face's CLIPImageProcessor) and
# torchvision, on 2,000 JPEG photographs of about 500x375: CLIP preset, patch 16, output
# (2000, 196, 768) float32 written to /dev/null by each side. 1 and 2 threads for us, 1 and
# 2 processes for the peers. Prints images per second, both sides, and the ratio; then
# how far our patches are from Pillow + NumPy's.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$here/out/vit-patchify
count=${IMAGES:-2000}
tool=$here/../bin/vit-patchify

if [ ! -f "$out/photos/$(printf %05d $((count - 1))).jpg" ]; then
    /usr/bin/python3 "$here/vit-patchify-photos.py" "$out/photos" "$count"
fi
find "$out/photos" -name '*.jpg' | sort | head -n "$count" >"$out/list"

# "images/s CPU-ms-per-image" of our tool: wall clock, and user + system time.
ours() {
    /usr/bin/time -f '%e %U %S' -o "$out/time" "$tool" -q --threads "$1" --files-from "$out/list" -o /dev/null
    read -r wall user system <"$out/time"
    echo "$(echo "$count / $wall" | bc -l) $(echo "1000 * ($user + $system) / $count" | bc -l)"
}
peer() { /usr/bin/python3 "$here/vit-patchify-peer.py" "$1" "$2" "$out/list"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
for threads in 1 2; do
    read -r rate cpu < <(ours "$threads")
    for peer_name in pil torchvision decode; do
        read -r peer_rate peer_cpu < <(peer "$peer_name" "$threads")
        case $peer_name in
            pil) label="Pillow + NumPy" ;;
            torchvision) label="torchvision" ;;
            decode) label="Pillow JPEG decode only" ;;
        esac
        printf '%d photos, clip, %d thread(s)  vit-patchify %6.1f img/s %5.2f ms CPU/img   %-23s %6.1f img/s %5.2f ms CPU/img   ratio %5.2fx (CPU %5.2fx)\n' \
            "$count" "$threads" "$rate" "$cpu" "$label" "$peer_rate" "$peer_cpu" \
            "$(echo "$rate / $peer_rate" | bc -l)" "$(echo "$peer_cpu / $cpu" | bc -l)"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

head -n 200 "$out/list" >"$out/sample"
"$tool" -q --files-from "$out/sample" -o "$out/sample.npy"
read -r mean largest < <(/usr/bin/python3 "$here/vit-patchify-peer.py" check 200 "$out/sample" "$out/sample.npy")
echo "agreement with Pillow + NumPy on 200 photos: mean |difference| $mean, largest $largest (normalised units)"
