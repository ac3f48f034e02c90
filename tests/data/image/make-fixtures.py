#!/usr/bin/python3
"""Makes the image fixtures and, with Pillow + NumPy (the path of Hugging Face's
CLIPImageProcessor) and PyTorch, the outputs vit-patchify must reproduce.

    /usr/bin/python3 tests/data/image/make-fixtures.py

Needs Debian's python3-pil, python3-numpy, python3-torch, python3-sklearn (china.jpg,
flower.jpg) and python-matplotlib-data (grace_hopper.jpg): natural photographs, cropped
and re-encoded small. Writes, beside this script:
  inputs      photo.jpg portrait.jpg big.jpg gray.jpg cmyk.jpg, rgb.png gray.png la.png
              rgba.png palette.png rgb16.png gray16.png, rgb.bmp rgb.tga rgb.ppm gray.pgm
              palette.gif, truncated.jpg, tiny-images.idx3-ubyte(.gz) tiny-labels.idx1-ubyte
  expected    *.npy: float32 patches (N, patches, C*P*P) of the case named in CASES
              big-clip-224.png: the 8-bit pixels Pillow gives big.jpg under the clip preset
              conv-weight.npy, conv-embeddings.npy: a Conv2d patch embedding by torch
"""
import gzip
import io
import os
import struct
import zlib

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SKLEARN_IMAGES = "/usr/lib/python3/dist-packages/sklearn/datasets/images"
HOPPER = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg"
FASHION = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
FASHION_LABELS = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"

CLIP = dict(mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711))
FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}


def path(name):
    return os.path.join(HERE, name)


# ------------------------------------------------------------------ the reference pipeline

def resized_size(width, height, resize):
    """Hugging Face's get_resize_output_image_size: an int is the shorter side."""
    if resize is None:
        return width, height
    if isinstance(resize, tuple):
        return resize
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = resize, int(resize * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def preprocess(image, resize=None, crop=None, resample="bicubic", mean=(0.0,), std=(1.0,), channels=3):
    """convert, resize (PIL), center crop (floor offsets), /255, normalise: float32 CHW."""
    image = image.convert("RGB" if channels == 3 else "L")
    size = resized_size(*image.size, resize)
    if size != image.size:
        image = image.resize(size, FILTERS[resample])
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if crop is not None:
        crop_width, crop_height = crop
        top, left = (pixels.shape[0] - crop_height) // 2, (pixels.shape[1] - crop_width) // 2
        pixels = pixels[top:top + crop_height, left:left + crop_width]
    return normalise(pixels, mean, std)


def normalise(pixels, mean, std):
    x = pixels.astype(np.float32) / np.float32(255)
    x = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def patchify(x, patch, layout="conv"):
    """(C, H, W) -> (H/P * W/P, C*P*P), row-major over the grid."""
    c, h, w = x.shape
    grid = x.reshape(c, h // patch, patch, w // patch, patch)
    order = (1, 3, 0, 2, 4) if layout == "conv" else (1, 3, 2, 4, 0)
    return np.ascontiguousarray(grid.transpose(order).reshape((h // patch) * (w // patch), c * patch * patch))


# ------------------------------------------------------------------------------- inputs

def photo(source, box, size):
    return Image.open(source).convert("RGB").crop(box).resize(size, Image.LANCZOS)


def write_png16(name, pixels, color_type):
    """A 16-bit PNG (Pillow cannot write 16-bit RGB): big-endian samples, no filter."""
    height, width = pixels.shape[:2]
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    with open(path(name), "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) +
                  chunk(b"IEND", b""))


def make_inputs():
    photo(os.path.join(SKLEARN_IMAGES, "china.jpg"), (100, 60, 580, 420), (160, 120)).save(path("photo.jpg"),
                                                                                           quality=90)
    photo(HOPPER, (40, 0, 490, 600), (90, 120)).save(path("portrait.jpg"), quality=90)
    photo(os.path.join(SKLEARN_IMAGES, "flower.jpg"), (0, 0, 640, 427), (500, 375)).save(path("big.jpg"),
                                                                                        quality=85)
    small = photo(os.path.join(SKLEARN_IMAGES, "flower.jpg"), (200, 100, 450, 300), (40, 32))
    small.convert("L").save(path("gray.jpg"), quality=90)
    small.convert("CMYK").save(path("cmyk.jpg"), quality=95)  # Pillow writes Adobe's inverted CMYK
    small.save(path("rgb.png"))
    small.convert("L").save(path("gray.png"))
    la = small.convert("LA")
    la.putalpha(Image.linear_gradient("L").resize(small.size))
    la.save(path("la.png"))
    rgba = small.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(small.size).rotate(90))
    rgba.save(path("rgba.png"))
    small.quantize(37).save(path("palette.png"))
    small.quantize(37).save(path("palette.gif"))
    small.save(path("rgb.bmp"))
    small.save(path("rgb.tga"))
    small.save(path("rgb.ppm"))
    small.convert("L").save(path("gray.pgm"))
    # High bytes: the 8-bit picture; low bytes: anything.
    wide = np.asarray(small).astype(np.uint16) * 256 + np.arange(0, 240, 6, dtype=np.uint16)[None, :, None]
    write_png16("rgb16.png", wide, 2)
    write_png16("gray16.png", wide[:, :, 1], 0)
    data = open(path("photo.jpg"), "rb").read()
    open(path("truncated.jpg"), "wb").write(data[:len(data) // 2])
    # The first five Fashion-MNIST test images and labels, as IDX files.
    images = gzip.open(FASHION).read()[:16 + 5 * 784]
    images = images[:4] + struct.pack(">I", 5) + images[8:]
    open(path("tiny-images.idx3-ubyte"), "wb").write(images)
    with gzip.GzipFile(path("tiny-images.idx3-ubyte.gz"), "wb", mtime=0) as out:
        out.write(images)
    labels = gzip.open(FASHION_LABELS).read()[:8 + 5]
    open(path("tiny-labels.idx1-ubyte"), "wb").write(labels[:4] + struct.pack(">I", 5) + labels[8:])


# ------------------------------------------------------------------------------- outputs

def open_image(name):
    return Image.open(path(name))


def gray16_high_bytes():
    """vit-patchify keeps the high byte of 16-bit gray (Pillow 9 clips it to 255 instead)."""
    pixels = (np.asarray(Image.open(path("gray16.png")), dtype=np.uint32) >> 8).astype(np.uint8)
    return Image.fromarray(pixels, "L")


# name: (input, preprocess arguments, patch size, layout, options in the e2e test)
CASES = {
    "rgb-none": ("rgb.png", {}, 8, "conv"),
    "rgb-none-pixels": ("rgb.png", {}, 8, "pixels"),
    "rgb-gray": ("rgb.png", dict(channels=1), 8, "conv"),
    "gray-none": ("gray.png", {}, 8, "conv"),
    "gray-gray": ("gray.png", dict(channels=1), 4, "conv"),
    "la-none": ("la.png", {}, 8, "conv"),
    "rgba-none": ("rgba.png", {}, 8, "conv"),
    "rgba-gray": ("rgba.png", dict(channels=1), 8, "conv"),
    "palette-none": ("palette.png", {}, 8, "conv"),
    "gif-none": ("palette.gif", {}, 8, "conv"),
    "bmp-none": ("rgb.bmp", {}, 8, "conv"),
    "tga-none": ("rgb.tga", {}, 8, "conv"),
    "ppm-none": ("rgb.ppm", {}, 8, "conv"),
    "pgm-none": ("gray.pgm", {}, 8, "conv"),
    "rgb16-none": ("rgb16.png", {}, 8, "conv"),
    "gray16-none": (gray16_high_bytes, {}, 8, "conv"),
    "jpeg-none": ("photo.jpg", dict(crop=(64, 48)), 8, "conv"),
    "gray-jpeg-none": ("gray.jpg", {}, 8, "conv"),
    "cmyk-none": ("cmyk.jpg", {}, 8, "conv"),
    "rgb-clip-normalise": ("rgb.png", dict(**CLIP), 8, "conv"),
    "rgb-crop": ("rgb.png", dict(crop=(24, 16)), 8, "conv"),
    "photo-clip-64": ("photo.jpg", dict(resize=64, crop=(64, 64), **CLIP), 16, "conv"),
    "portrait-clip-64": ("portrait.jpg", dict(resize=64, crop=(64, 64), **CLIP), 16, "conv"),
    "photo-bicubic-down": ("photo.jpg", dict(resize=(56, 40)), 8, "conv"),
    "photo-bilinear-down": ("photo.jpg", dict(resize=(56, 40), resample="bilinear"), 8, "conv"),
    "photo-nearest-down": ("photo.jpg", dict(resize=(56, 40), resample="nearest"), 8, "conv"),
    "photo-bicubic-width": ("photo.jpg", dict(resize=(64, 120), crop=(64, 112)), 8, "conv"),
    "photo-bicubic-height": ("photo.jpg", dict(resize=(160, 48), crop=(160, 48)), 16, "conv"),
    "rgb-bicubic-up": ("rgb.png", dict(resize=(88, 72)), 8, "conv"),
    "rgb-bilinear-up": ("rgb.png", dict(resize=(88, 72), resample="bilinear"), 8, "conv"),
    "rgb-nearest-up": ("rgb.png", dict(resize=(88, 72), resample="nearest"), 8, "conv"),
    "gray-bicubic-up": ("gray.png", dict(resize=(56, 48), channels=1), 8, "conv"),
    "gray-shorter-side": ("gray.png", dict(resize=45, crop=(48, 40)), 8, "conv"),
}


def make_outputs():
    for name, (source, arguments, patch, layout) in CASES.items():
        image = source() if callable(source) else open_image(source)
        patches = patchify(preprocess(image, **arguments), patch, layout)
        np.save(path(name + ".npy"), patches[None])

    # The whole clip preset on a 500x375 photograph, kept as its 8-bit pixels.
    big = Image.open(path("big.jpg")).convert("RGB").resize(resized_size(500, 375, 224), Image.BICUBIC)
    left = (big.size[0] - 224) // 2
    big.crop((left, 0, left + 224, 224)).save(path("big-clip-224.png"))

    # Fashion-MNIST records as 7x7 patches of gray in [0, 1].
    records = np.frombuffer(open(path("tiny-images.idx3-ubyte"), "rb").read()[16:], np.uint8).reshape(5, 28, 28)
    np.save(path("tiny-images.npy"), np.stack([patchify(normalise(r[:, :, None], (0.0,), (1.0,)), 7)
                                               for r in records]))
    np.save(path("tiny-labels.npy"), np.frombuffer(open(path("tiny-labels.idx1-ubyte"), "rb").read()[8:],
                                                   np.uint8).astype(np.int64))

    # The Conv2d patch embedding of Hugging Face's ViT/CLIP, by torch: weight (D, C, P, P),
    # stride P, on the normalised rgb.png; embeddings (patches, D).
    x = torch.from_numpy(preprocess(open_image("rgb.png"), **CLIP))
    weight = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    embeddings = torch.nn.functional.conv2d(x[None], weight, stride=8).flatten(2).transpose(1, 2)[0]
    np.save(path("conv-weight.npy"), weight.numpy())
    np.save(path("conv-embeddings.npy"), np.ascontiguousarray(embeddings.numpy()))


make_inputs()
make_outputs()
