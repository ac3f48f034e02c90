#!/usr/bin/python3
"""The peers of vit-patchify: the CLIP preset, patch 16, on a list of images, written as a
.npy of shape (N, 196, 768) to /dev/null, on WORKERS processes (each takes a contiguous
share of the list). Prints the images per second of the slowest worker (wall clock) and the
CPU milliseconds per image of all workers together, imports and process start excluded.

    vit-patchify-peer.py pil|torchvision|decode WORKERS LIST
        pil          Pillow + NumPy, as Hugging Face's CLIPImageProcessor computes it
        torchvision  torchvision.io.decode_jpeg and tensor transforms (antialiased bicubic)
        decode       Pillow's JPEG decoding alone (libjpeg-turbo), for scale
    vit-patchify-peer.py check COUNT LIST PATCHES.npy
        mean and largest absolute difference between the first COUNT rows of PATCHES.npy
        and Pillow + NumPy's
"""
import multiprocessing
import os
import sys
import time

import numpy as np
from PIL import Image

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)


def pil_patches(path):
    image = Image.open(path).convert("RGB")
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(224 * long / short)
    image = image.resize((224, new_long) if width <= height else (new_long, 224), Image.BICUBIC)
    pixels = np.asarray(image)
    top, left = (pixels.shape[0] - 224) // 2, (pixels.shape[1] - 224) // 2
    x = pixels[top:top + 224, left:left + 224].astype(np.float32) / np.float32(255)
    x = ((x - MEAN) / STD).transpose(2, 0, 1)
    return x.reshape(3, 14, 16, 14, 16).transpose(1, 3, 0, 2, 4).reshape(196, 768)


def torchvision_worker():
    import torch
    from torchvision import io, transforms
    torch.set_num_threads(1)
    transform = transforms.Compose([
        transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC, antialias=True),
        transforms.CenterCrop(224),
    ])
    normalize = transforms.Normalize(MEAN.tolist(), STD.tolist())

    def patches(path):
        x = transform(io.decode_jpeg(io.read_file(path), mode=io.ImageReadMode.RGB))
        x = normalize(x.float() / 255)
        return x.reshape(3, 14, 16, 14, 16).permute(1, 3, 0, 2, 4).reshape(196, 768).numpy()
    return patches


def decode_only(path):
    Image.open(path).convert("RGB").load()
    return None


def worker(mode, paths, barrier, results):
    patches = {"pil": lambda: pil_patches, "torchvision": torchvision_worker, "decode": lambda: decode_only}[mode]()
    with open(os.devnull, "wb") as out:
        barrier.wait()
        start, cpu_start = time.perf_counter(), time.process_time()
        out.write(b"\x93NUMPY")  # stands for the header; the rows are what costs
        for path in paths:
            rows = patches(path)
            if rows is not None:
                out.write(np.ascontiguousarray(rows, dtype=np.float32).tobytes())
        results.put((time.perf_counter() - start, time.process_time() - cpu_start))


def run(mode, workers, paths):
    barrier = multiprocessing.Barrier(workers)
    results = multiprocessing.Queue()
    shares = [paths[len(paths) * i // workers:len(paths) * (i + 1) // workers] for i in range(workers)]
    processes = [multiprocessing.Process(target=worker, args=(mode, share, barrier, results)) for share in shares]
    for process in processes:
        process.start()
    times = [results.get() for _ in processes]
    for process in processes:
        process.join()
    wall, cpu = max(t[0] for t in times), sum(t[1] for t in times)
    print(f"{len(paths) / wall:.1f} {1000 * cpu / len(paths):.3f}")


def check(count, paths, patches_file):
    ours = np.load(patches_file, mmap_mode="r")
    differences = np.stack([np.abs(ours[i] - pil_patches(path)) for i, path in enumerate(paths[:count])])
    print(f"{differences.mean():.6f} {differences.max():.6f}")


def main():
    mode = sys.argv[1]
    paths = open(sys.argv[3]).read().split()
    if mode == "check":
        check(int(sys.argv[2]), paths, sys.argv[4])
    else:
        run(mode, int(sys.argv[2]), paths)


main()
