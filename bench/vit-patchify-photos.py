#!/usr/bin/python3
"""Makes the benchmark's photographs: COUNT JPEGs of about 500x375 (some portrait), cut
from the natural photographs Debian ships (scikit-learn's china.jpg and flower.jpg,
matplotlib's grace_hopper.jpg), each a different crop, scale, flip and colour balance,
re-encoded by Pillow at qualities 75 to 95. The same files on every run.

    /usr/bin/python3 bench/vit-patchify-photos.py FOLDER COUNT
"""
import os
import random
import sys

from PIL import Image, ImageEnhance

SOURCES = [
    "/usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg",
    "/usr/lib/python3/dist-packages/sklearn/datasets/images/flower.jpg",
    "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg",
]


def photograph(source, rng):
    width, height = source.size
    portrait = rng.random() < 0.25
    target = (rng.randint(360, 390), rng.randint(480, 520)) if portrait else (rng.randint(480, 520),
                                                                              rng.randint(360, 390))
    # The largest box of the target's aspect ratio, shrunk by up to a half, anywhere.
    aspect = target[0] / target[1]
    box_width = min(width, int(height * aspect))
    scale = rng.uniform(0.5, 1.0)
    box_width = max(16, int(box_width * scale))
    box_height = max(16, int(box_width / aspect))
    left, top = rng.randint(0, width - box_width), rng.randint(0, height - box_height)
    image = source.crop((left, top, left + box_width, top + box_height)).resize(target, Image.LANCZOS)
    if rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.6, 1.4))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
    return image


def main():
    folder, count = sys.argv[1], int(sys.argv[2])
    os.makedirs(folder, exist_ok=True)
    sources = [Image.open(path).convert("RGB") for path in SOURCES]
    rng = random.Random(2026)
    for i in range(count):
        image = photograph(sources[i % len(sources)], rng)
        image.save(os.path.join(folder, f"{i:05}.jpg"), quality=rng.randint(75, 95))


main()
