#!/usr/bin/python3
"""The peer of bench/lora-merge.sh: load, merge and save in PyTorch, the way a script does
with safetensors.torch and PEFT (neither is installed here, so their file handling is
written out the way they do it):

- load_file: each shard's tensors are read from the file into tensors of their own;
- merge as PEFT's Linear.merge: delta = (B @ A) * scale in the adapter's dtype (float32),
  added in place to the BF16 weight (PyTorch computes bf16 += f32 in float32, rounding once);
- save_file: each shard serialised into one buffer (header + tensors in the same order),
  then written; plus the index and config.json.

    lora-merge-peer.py BASE ADAPTER OUT
"""
import json
import os
import shutil
import struct
import sys

import torch

DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def load_file(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = bytearray(f.read())
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        begin, end = entry["data_offsets"]
        tensors[name] = torch.frombuffer(data, dtype=DTYPES[entry["dtype"]], count=(end - begin) // 2
                                         if entry["dtype"] != "F32" else (end - begin) // 4,
                                         offset=begin).reshape(entry["shape"]).clone()
    return tensors, metadata


def save_file(tensors, path, metadata):
    header, offset, order = {"__metadata__": metadata}, 0, sorted(tensors)
    for name in order:
        size = tensors[name].numel() * tensors[name].element_size()
        header[name] = {"dtype": {v: k for k, v in DTYPES.items()}[tensors[name].dtype],
                        "shape": list(tensors[name].shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    buffer = struct.pack("<Q", len(text)) + text + b"".join(
        tensors[name].contiguous().view(torch.uint8).numpy().tobytes() for name in order)
    with open(path, "wb") as out:
        out.write(buffer)


def main(base, adapter, out):
    config = json.load(open(os.path.join(adapter, "adapter_config.json")))
    lora, _ = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    scale = config["lora_alpha"] / config["r"]
    index = json.load(open(os.path.join(base, "model.safetensors.index.json")))
    model, metadata = {}, {}
    for shard in sorted(set(index["weight_map"].values())):
        tensors, metadata[shard] = load_file(os.path.join(base, shard))
        model.update(tensors)
    with torch.no_grad():
        for key in lora:
            if key.endswith(".lora_A.weight"):
                module = key[len("base_model.model."):-len(".lora_A.weight")]
                a, b = lora[key], lora[key.replace("lora_A", "lora_B")]
                model[module + ".weight"] += (b @ a) * scale
    os.makedirs(out, exist_ok=True)
    for shard in metadata:
        names = [name for name, file in index["weight_map"].items() if file == shard]
        save_file({name: model[name] for name in names}, os.path.join(out, shard), metadata[shard])
    for name in ("model.safetensors.index.json", "config.json"):
        shutil.copy(os.path.join(base, name), os.path.join(out, name))


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", os.cpu_count())))
    main(*sys.argv[1:4])
