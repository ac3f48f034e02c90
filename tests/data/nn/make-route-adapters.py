#!/usr/bin/python3
"""make-route-adapters.py FOLDER: writes PEFT-layout LoRA adapters for the tiny models of
tests/data/nn into FOLDER, for the tests of lora-predict with several adapters in one batch
(tests/e2e/lora-predict-routes.sh; bench/lora-predict-routes.sh makes its own with
adapter()). Each model gets adapters on different module sets with
different ranks, scales and, for classifiers, a head of their own in modules_to_save, as
PEFT's save_pretrained writes them (adapter_config.json + adapter_model.safetensors with
"base_model.model." keys; A [r, in] and B [out, r] in Linear orientation, Conv1D included).
Values are drawn from Python's seeded generator, so every run writes the same bytes. Only
the standard library: it runs wherever the tests run."""
import array
import json
import os
import random
import struct
import sys

def gpt2_shapes(width):
    """(in, out) of GPT-2's adapted modules."""
    return {"c_attn": (width, 3 * width), "attn.c_proj": (width, width), "c_fc": (width, 4 * width),
            "mlp.c_proj": (4 * width, width)}


GPT2_MODULES = {"c_attn": "attn.c_attn", "attn.c_proj": "attn.c_proj", "c_fc": "mlp.c_fc",
                "mlp.c_proj": "mlp.c_proj"}


def clip_shapes(width, inner):
    return {"q_proj": (width, width), "k_proj": (width, width), "v_proj": (width, width),
            "out_proj": (width, width), "fc1": (width, inner), "fc2": (inner, width)}


def clip_module(name):
    return ("mlp." if name.startswith("fc") else "self_attn.") + name


def write_safetensors(path, tensors):
    """tensors: [(name, shape, float values)], written sorted by name as safetensors does."""
    header, offset, data = {"__metadata__": {"format": "pt"}}, 0, b""
    for name, shape, values in sorted(tensors):
        raw = array.array("f", values).tobytes()
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def adapter(folder, name, modules, r, alpha, seed, fan_in_fan_out, rslora=False, head=None, head_shapes=(),
            layers=None, bias="none", embedding=None):
    """modules: [(full module path, (in, out))]; head_shapes: the tensors trained in full, of the
    modules_to_save `head` or the biases that `bias` trains; embedding: (module path, (entries,
    width)) of a token embedding that takes LoRA too."""
    generator = random.Random(seed)
    draw = lambda count, scale: [generator.gauss(0, scale) for _ in range(count)]
    tensors = []
    for module, (fan_in, fan_out) in modules:
        key = "base_model.model." + module
        tensors.append((key + ".lora_A.weight", (r, fan_in), draw(r * fan_in, 0.3)))
        tensors.append((key + ".lora_B.weight", (fan_out, r), draw(fan_out * r, 0.3)))
    if embedding:
        module, (entries, width) = embedding
        tensors.append(("base_model.model." + module + ".lora_embedding_A", (r, entries), draw(r * entries, 0.3)))
        tensors.append(("base_model.model." + module + ".lora_embedding_B", (width, r), draw(width * r, 0.3)))
        modules = modules + [embedding]
    for tensor, shape in head_shapes:
        count = 1
        for size in shape:
            count *= size
        tensors.append(("base_model.model." + tensor, shape, draw(count, 0.5)))
    targets = sorted({module.rsplit(".", 2)[-2] + "." + module.rsplit(".", 1)[-1] for module, _ in modules})
    config = {
        "alpha_pattern": {}, "base_model_name_or_path": "tiny", "bias": bias, "fan_in_fan_out": fan_in_fan_out,
        "inference_mode": True, "init_lora_weights": True, "layers_pattern": "h" if layers else None,
        "layers_to_transform": layers,
        "lora_alpha": alpha, "lora_dropout": 0.0, "modules_to_save": [head] if head else None,
        "peft_type": "LORA", "r": r, "rank_pattern": {}, "revision": None, "target_modules": targets,
        "task_type": "SEQ_CLS" if head else None, "use_dora": False, "use_rslora": rslora,
    }
    path = os.path.join(folder, name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "adapter_config.json"), "w") as f:
        f.write(json.dumps(config, indent=2, sort_keys=True))
    write_safetensors(os.path.join(path, "adapter_model.safetensors"), tensors)


def gpt2_modules(names, layers=(0, 1), width=32):
    shapes = gpt2_shapes(width)
    return [(f"transformer.h.{layer}.{GPT2_MODULES[name]}", shapes[name]) for layer in layers for name in names]


def clip_modules(tower, names, width, inner, layers=(0, 1)):
    shapes = clip_shapes(width, inner)
    return [(f"{tower}.encoder.layers.{layer}.{clip_module(name)}", shapes[name]) for layer in layers
            for name in names]


def main():
    folder = sys.argv[1]
    # GPT-2 language model: the fused q/k/v, the MLP, one projection of one layer
    adapter(folder, "lm-attn", gpt2_modules(["c_attn"]), 4, 8, 1, True)
    adapter(folder, "lm-mlp", gpt2_modules(["c_fc", "mlp.c_proj"]), 2, 4, 2, True, rslora=True)
    adapter(folder, "lm-proj", gpt2_modules(["attn.c_proj"], layers=(1,)), 8, 4, 3, True, layers=[1])
    # A bias trained in full: it cannot change from row to row of a batch
    adapter(folder, "lm-bias", gpt2_modules(["c_attn"], layers=(0,)), 2, 2, 11, True, layers=[0], bias="all",
            head_shapes=[("transformer.h.0.attn.c_attn.bias", (96,))])
    # GPT-2 classifier (3 labels): two with a score head of their own (one with LoRA on the token
    # embedding too), one with LoRA only
    score = [("score.weight", (3, 32))]
    adapter(folder, "classify-attn", gpt2_modules(["c_attn"]), 2, 4, 4, True, head="score", head_shapes=score,
            embedding=("transformer.wte", (96, 32)))
    adapter(folder, "classify-mlp", gpt2_modules(["c_fc", "attn.c_proj"]), 6, 12, 5, True, head="score",
            head_shapes=score)
    adapter(folder, "classify-lora", gpt2_modules(["c_attn"], layers=(0,)), 3, 3, 6, True, layers=[0])
    # ViT classifier (5 labels, width 32, MLP 64)
    classifier = [("classifier.weight", (5, 32)), ("classifier.bias", (5,))]
    adapter(folder, "vit-qv", clip_modules("vision_model", ["q_proj", "v_proj"], 32, 64), 4, 8, 7, False,
            head="classifier", head_shapes=classifier)
    adapter(folder, "vit-mlp", clip_modules("vision_model", ["fc1", "fc2", "out_proj"], 32, 64), 2, 2, 8, False)
    # CLIP: the text tower (width 32, MLP 48), the vision tower (width 24, MLP 64)
    adapter(folder, "clip-text", clip_modules("text_model", ["q_proj", "k_proj"], 32, 48), 2, 4, 9, False,
            embedding=("text_model.embeddings.token_embedding", (64, 32)))
    adapter(folder, "clip-both", clip_modules("vision_model", ["fc1"], 24, 64) +
            clip_modules("text_model", ["out_proj"], 32, 48, layers=(1,)), 5, 10, 10, False)


if __name__ == "__main__":
    main()
