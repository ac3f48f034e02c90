#!/usr/bin/python3
"""Makes the input of bench/lora-merge.sh in OUT: a synthetic 1.5 GB BF16 checkpoint in the
layout of a Llama-style model (hidden 2048, 12 layers, q/k/v/o and MLP projections,
separate embedding and LM head) saved as transformers saves it, in three shards with
model.safetensors.index.json; and a rank-16 PEFT adapter (F32, alpha 32) on q_proj,
k_proj, v_proj and o_proj of every layer.

    lora-merge-checkpoint.py OUT
"""
import json
import os
import struct
import sys

import numpy as np

HIDDEN, INTERMEDIATE, LAYERS, VOCAB, RANK = 2048, 5632, 12, 32000, 16
MAX_SHARD = 520_000_000  # bytes of tensor data per shard, as save_pretrained(max_shard_size=...)


def model_tensors():
    """(name, shape) in state-dict order."""
    yield "model.embed_tokens.weight", (VOCAB, HIDDEN)
    for i in range(LAYERS):
        layer = f"model.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            yield layer + f"self_attn.{proj}.weight", (HIDDEN, HIDDEN)
        yield layer + "mlp.gate_proj.weight", (INTERMEDIATE, HIDDEN)
        yield layer + "mlp.up_proj.weight", (INTERMEDIATE, HIDDEN)
        yield layer + "mlp.down_proj.weight", (HIDDEN, INTERMEDIATE)
        yield layer + "input_layernorm.weight", (HIDDEN,)
        yield layer + "post_attention_layernorm.weight", (HIDDEN,)
    yield "model.norm.weight", (HIDDEN,)
    yield "lm_head.weight", (VOCAB, HIDDEN)


def bf16_values(rng, shape):
    values = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
    return (values.view(np.uint32) >> 16).astype(np.uint16)  # truncation is fine for random data


def write_safetensors(path, tensors, metadata):
    header, offset = {"__metadata__": metadata}, 0
    for name, array, dtype in tensors:
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text)
        for _, array, _ in tensors:
            array.tofile(out)


def main(out):
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(out, "base"), exist_ok=True)
    shards, current, size = [], [], 0
    for name, shape in model_tensors():
        nbytes = 2 * int(np.prod(shape))
        if current and size + nbytes > MAX_SHARD:
            shards.append(current)
            current, size = [], 0
        current.append((name, shape))
        size += nbytes
    shards.append(current)
    weight_map, total = {}, 0
    for number, names in enumerate(shards, 1):
        file = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        tensors = [(name, bf16_values(rng, shape), "BF16") for name, shape in sorted(names)]
        write_safetensors(os.path.join(out, "base", file), tensors, {"format": "pt"})
        for name, array, _ in tensors:
            weight_map[name] = file
            total += array.nbytes
    with open(os.path.join(out, "base", "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2, sort_keys=True) + "\n")
    with open(os.path.join(out, "base", "config.json"), "w") as f:
        json.dump({"model_type": "llama", "hidden_size": HIDDEN, "intermediate_size": INTERMEDIATE,
                   "num_hidden_layers": LAYERS, "vocab_size": VOCAB, "tie_word_embeddings": False,
                   "torch_dtype": "bfloat16"}, f, indent=2, sort_keys=True)

    adapter = os.path.join(out, "adapter")
    os.makedirs(adapter, exist_ok=True)
    tensors = []
    for i in range(LAYERS):
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            module = f"base_model.model.model.layers.{i}.self_attn.{proj}"
            bound = 1 / np.sqrt(HIDDEN)
            tensors.append((module + ".lora_A.weight", rng.uniform(-bound, bound, (RANK, HIDDEN)).astype(np.float32), "F32"))
            tensors.append((module + ".lora_B.weight", (0.01 * rng.standard_normal((HIDDEN, RANK))).astype(np.float32), "F32"))
    write_safetensors(os.path.join(adapter, "adapter_model.safetensors"), sorted(tensors), {"format": "pt"})
    with open(os.path.join(adapter, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "r": RANK, "lora_alpha": 32, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
                   "fan_in_fan_out": False, "bias": "none", "task_type": "CAUSAL_LM", "use_rslora": False,
                   "use_dora": False, "init_lora_weights": True, "base_model_name_or_path": "synthetic"},
                  f, indent=2, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
