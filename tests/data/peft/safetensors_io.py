"""Reading and writing safetensors files by hand (the `safetensors` package is not at hand):
8-byte little-endian header length, the JSON header, then the tensors' bytes. Tensors
are NumPy arrays; BF16 ones travel as uint16 bit patterns tagged "BF16"."""
import json
import os
import struct

import numpy as np

NUMPY_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_,
}


def write(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, numpy array), written in that order."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, array in tensors:
        data = np.ascontiguousarray(array, dtype=NUMPY_DTYPES[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for chunk in chunks:
            out.write(chunk)


def read(path):
    """{name: (dtype, numpy array)} and the metadata, in file order."""
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        begin, end = entry["data_offsets"]
        data = np.frombuffer(raw[8 + length + begin:8 + length + end], dtype=NUMPY_DTYPES[entry["dtype"]])
        tensors[name] = (entry["dtype"], data.reshape(entry["shape"]))
    return tensors, metadata


def read_checkpoint(path):
    """All tensors of a file, or of a folder (sharded or holding model.safetensors)."""
    if not os.path.isdir(path):
        return read(path)[0]
    index = os.path.join(path, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    tensors = {}
    for name in files:
        tensors.update(read(os.path.join(path, name))[0])
    return tensors


def to_float64(dtype, array):
    if dtype == "BF16":
        bits = array.reshape(-1).astype(np.uint32) << 16
        return bits.view(np.float32).astype(np.float64).reshape(array.shape)
    return array.astype(np.float64)


def spacing(dtype, values):
    """The distance between neighbouring values of `dtype` around each value."""
    mantissa, lowest = {"BF16": (7, -126), "F16": (10, -14), "F32": (23, -126), "F64": (52, -1022)}[dtype]
    exponent = np.floor(np.log2(np.maximum(np.abs(values), 2.0 ** lowest)))
    return np.exp2(exponent - mantissa)
