#!/usr/bin/python3
"""Writes the fuzz targets' seed inputs (tests/fuzz/seeds/<target>/): small valid files,
so that the fuzzer starts from the formats' real structure.

    python3 tests/fuzz/make-seeds.py
"""
import gzip
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")


def folder(name):
    path = os.path.join(HERE, "seeds", name)
    os.makedirs(path, exist_ok=True)
    return path


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


seeds = folder("safetensors")
files = {
    "empty": safetensors({}),
    "metadata": safetensors({}, {"format": "pt", "config": '{"n_layer": 2}'}),
    "mixed": safetensors({"w": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)),
                          "h": ("F16", [2], struct.pack("<2H", 0x3C00, 0xC000)),
                          "b": ("BF16", [1], struct.pack("<H", 0x3F80)),
                          "ids": ("I64", [1, 2], struct.pack("<2q", 7, -1))}),
    "scalar": safetensors({"logit_scale": ("F32", [], struct.pack("<f", 4.6))}),
}
for name, contents in files.items():
    with open(os.path.join(seeds, name), "wb") as f:
        f.write(contents)

seeds = folder("npy")
for name in ("f4-2x3", "i8-4", "u1-2x2", "f4-scalar", "u2-3"):
    shutil.copy(os.path.join(DATA, "formats", name + ".npy"), os.path.join(seeds, name))

seeds = folder("glue-files")
glue = os.path.join(DATA, "glue-eval")
for name, gold, pred in (("cola", "cola.dev.tsv", "cola.submission.tsv"),
                         ("stsb", "stsb.dev.tsv", "stsb.submission.tsv"),
                         ("generic", "binary.gold", "binary.pred")):
    with open(os.path.join(glue, gold), "rb") as g, open(os.path.join(glue, pred), "rb") as p:
        contents = b"\n".join(g.read().split(b"\n")[:6]) + b"\0" + b"\n".join(p.read().split(b"\n")[:6])
    with open(os.path.join(seeds, name), "wb") as f:
        f.write(contents)

seeds = folder("image")
for name in ("rgb.png", "la.png", "palette.png", "rgb16.png", "palette.gif", "rgb.bmp", "rgb.tga", "gray.pgm",
             "gray.jpg", "cmyk.jpg", "truncated.jpg"):
    shutil.copy(os.path.join(DATA, "image", name), os.path.join(seeds, name))

seeds = folder("idx")
images = struct.pack(">BBBB3I", 0, 0, 0x08, 3, 2, 4, 4) + bytes(range(32))
labels = struct.pack(">BBBBI", 0, 0, 0x08, 1, 2) + bytes([3, 7])
floats = struct.pack(">BBBB2I", 0, 0, 0x0D, 2, 1, 2) + struct.pack(">2f", 0.5, -1)
for name, contents in (("images", images), ("labels", labels), ("floats", floats),
                       ("images.gz", gzip.compress(images, mtime=0))):
    with open(os.path.join(seeds, name), "wb") as f:
        f.write(contents)

seeds = folder("adapter-config")
for name in ("peft/gpt2-rslora", "peft/vit-lora", "nn/adapter-lm"):
    shutil.copy(os.path.join(DATA, name, "adapter_config.json"), os.path.join(seeds, name.replace("/", "-")))

seeds = folder("shard-index")
shutil.copy(os.path.join(DATA, "peft", "clip-sharded", "model.safetensors.index.json"), os.path.join(seeds, "clip"))

seeds = folder("model-config")
shutil.copy(os.path.join(DATA, "peft", "gpt2", "config.json"), os.path.join(seeds, "gpt2"))
shutil.copy(os.path.join(DATA, "peft", "clip-sharded", "config.json"), os.path.join(seeds, "clip"))

seeds = folder("bpe-files")
clip = os.path.join(DATA, "bpe", "clip")
with open(os.path.join(clip, "vocab.json"), "rb") as v, open(os.path.join(clip, "merges.txt"), "rb") as m:
    vocab, merges = v.read(), m.read()
with open(os.path.join(seeds, "vocab-merges"), "wb") as f:
    f.write(vocab[:3000] + b"\0" + merges[:1500])
shutil.copy(os.path.join(clip, "tokenizer.json"), os.path.join(seeds, "tokenizer.json"))
with open(os.path.join(seeds, "tiktoken"), "wb") as f:
    f.write(b"IQ== 0\nIg== 1\nIyM= 2\nJCQk 3\n")

seeds = folder("bpe-ids")
with open(os.path.join(seeds, "text"), "wb") as f:
    f.write(b"31373 995\n15496 995\n\n50256\n")
shutil.copy(os.path.join(DATA, "formats", "i4-3x1x2.npy"), os.path.join(seeds, "npy"))
with open(os.path.join(seeds, "u16"), "wb") as f:
    f.write(struct.pack("<4H", 1, 2, 50256, 7))
