#!/usr/bin/python3
"""Makes the lora-merge fixtures: tiny base models in the layouts of GPT-2 (Conv1D
[in, out], hub names without "transformer."), ViT (Linear, "vit." prefix, F16) and CLIP
(Linear, BF16, three shards with an index), PEFT-layout adapters for them (as PEFT's
save_pretrained writes them: adapter_config.json + adapter_model.safetensors with
"base_model.model." keys), lora-train trained-tensor files, broken adapters, and the
merged tensors expected, computed with PyTorch in float64 as PEFT's merge defines them:

    Linear:  W + w·s·B A        Conv1D (fan_in_fan_out): W + w·s·(B A)ᵀ
    Conv2d:  W + w·s·(B₂ A₂) reshaped      Embedding: W + w·s·(B A)ᵀ
    s = alpha / r (alpha / sqrt(r) with use_rslora), per module from rank/alpha_pattern

then rounded to the base dtype. Run it to regenerate the files beside it:
    /usr/bin/python3 tests/data/peft/make-fixtures.py
"""
import json
import math
import os
import shutil

import numpy as np
import torch

import safetensors_io as st

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(7)
TORCH_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def to_numpy(tensor, dtype):
    tensor = tensor.detach().to(TORCH_DTYPES[dtype]) if dtype in TORCH_DTYPES else tensor
    if dtype == "BF16":
        return tensor.contiguous().view(torch.int16).numpy().view(np.uint16)
    return tensor.contiguous().numpy()


def save(path, tensors, metadata=None, order=None):
    """tensors: {name: (dtype, torch tensor)}; written sorted by name unless `order` is given."""
    names = order if order is not None else sorted(tensors)
    st.write(path, [(name, tensors[name][0], to_numpy(tensors[name][1], tensors[name][0])) for name in names],
             metadata or {"format": "pt"})


def fresh_folder(name):
    path = os.path.join(HERE, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def write_json(path, value, newline=True):
    with open(path, "w") as f:
        f.write(json.dumps(value, indent=2, sort_keys=True) + ("\n" if newline else ""))


def peft_config(**fields):
    """adapter_config.json as PEFT writes it, with the fields it writes that we ignore."""
    config = {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "tiny", "bias": "none",
        "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True, "layer_replication": None,
        "layers_pattern": None, "layers_to_transform": None, "loftq_config": {}, "lora_alpha": 8,
        "lora_dropout": 0.0, "megatron_config": None, "megatron_core": "megatron.core", "modules_to_save": None,
        "peft_type": "LORA", "r": 4, "rank_pattern": {}, "revision": None, "target_modules": [],
        "task_type": "CAUSAL_LM", "use_dora": False, "use_rslora": False,
    }
    config.update(fields)
    return config


def save_adapter(name, config, tensors, metadata=None):
    folder = fresh_folder(name)
    write_json(os.path.join(folder, "adapter_config.json"), config, newline=False)
    save(os.path.join(folder, "adapter_model.safetensors"), tensors, metadata)


def lora_pair(rank, inputs, outputs, dtype="F32"):
    """A in [r, in] as PEFT's default init draws it, and a trained-looking B in [out, r]."""
    bound = 1 / math.sqrt(inputs)
    return (dtype, torch.empty(rank, inputs).uniform_(-bound, bound)), (dtype, 0.2 * torch.randn(outputs, rank))


def product(a, b):
    """B A in float64, from the stored (possibly 16-bit) values."""
    return b[1].to(TORCH_DTYPES[b[0]]).double() @ a[1].to(TORCH_DTYPES[a[0]]).double()


def merged(base_entry, delta):
    dtype, weight = base_entry
    return dtype, (weight.to(TORCH_DTYPES[dtype]).double() + delta).to(TORCH_DTYPES[dtype])


# ------------------------------------------------------------------------------- GPT-2
D, LAYERS, VOCAB, POSITIONS, INNER = 16, 2, 64, 16, 64


def gpt2_base():
    tensors = {"wte.weight": 0.1 * torch.randn(VOCAB, D), "wpe.weight": 0.02 * torch.randn(POSITIONS, D),
               "ln_f.weight": 1 + 0.1 * torch.randn(D), "ln_f.bias": 0.1 * torch.randn(D)}
    for i in range(LAYERS):
        h = f"h.{i}."
        tensors[h + "attn.bias"] = torch.tril(torch.ones(POSITIONS, POSITIONS)).view(1, 1, POSITIONS, POSITIONS)
        for shape_name, shape in (("attn.c_attn", (D, 3 * D)), ("attn.c_proj", (D, D)), ("mlp.c_fc", (D, INNER)),
                                  ("mlp.c_proj", (INNER, D))):
            tensors[h + shape_name + ".weight"] = 0.1 * torch.randn(*shape)  # Conv1D: [in, out]
            tensors[h + shape_name + ".bias"] = 0.1 * torch.randn(shape[1])
        for norm in ("ln_1", "ln_2"):
            tensors[h + norm + ".weight"] = 1 + 0.1 * torch.randn(D)
            tensors[h + norm + ".bias"] = 0.1 * torch.randn(D)
    return {name: ("F32", value) for name, value in tensors.items()}


def gpt2_lora(name, base, config, modules, rank_of, alpha_of):
    """A PEFT adapter on GPT2LMHeadModel module paths; returns {base name: ΔW/weight-1 delta}."""
    tensors, deltas = {}, {}
    for module in modules:
        rank, alpha = rank_of(module), alpha_of(module)
        base_name = module.removeprefix("transformer.") + ".weight"
        inputs, outputs = base[base_name][1].shape if module != "lm_head" else (D, VOCAB)
        a, b = lora_pair(rank, inputs, outputs)
        tensors[f"base_model.model.{module}.lora_A.weight"] = a
        tensors[f"base_model.model.{module}.lora_B.weight"] = b
        scale = alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)
        delta = scale * product(a, b)  # [out, in]
        if module == "lm_head":
            deltas["lm_head.weight"] = delta  # nn.Linear: [vocab, n_embd], like wte
        else:
            deltas[base_name] = delta.T  # Conv1D stores [in, out]
    save_adapter(name, config, tensors)
    return deltas


def make_gpt2():
    folder = fresh_folder("gpt2")
    base = gpt2_base()
    save(os.path.join(folder, "model.safetensors"), base)
    write_json(os.path.join(folder, "config.json"), {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": D, "n_head": 2, "n_layer": LAYERS,
        "n_positions": POSITIONS, "vocab_size": VOCAB, "activation_function": "gelu_new"})

    attention = [f"transformer.h.{i}.attn.{m}" for i in range(LAYERS) for m in ("c_attn", "c_proj")]
    mlp_out = [f"transformer.h.{i}.mlp.c_proj" for i in range(LAYERS)]
    # rank_pattern and alpha_pattern: mlp.c_proj has rank 2, layer 1's c_attn alpha 4.
    lora = gpt2_lora("gpt2-lora", base, peft_config(
        target_modules=["c_attn", "c_proj"], fan_in_fan_out=True, rank_pattern={"mlp.c_proj": 2},
        alpha_pattern={"h.1.attn.c_attn": 4}), attention + mlp_out,
        lambda m: 2 if m.endswith("mlp.c_proj") else 4, lambda m: 4 if m == "transformer.h.1.attn.c_attn" else 8)
    save(os.path.join(HERE, "gpt2-lora.expected.safetensors"),
         {name: merged(base[name], delta) for name, delta in lora.items()})

    rslora = gpt2_lora("gpt2-rslora", base, peft_config(
        r=8, lora_alpha=16, use_rslora=True, target_modules=["c_fc", "attn.c_proj"], fan_in_fan_out=True),
        [f"transformer.h.{i}.{m}" for i in range(LAYERS) for m in ("mlp.c_fc", "attn.c_proj")],
        lambda m: 8, lambda m: 16)
    two = {}
    for name in set(lora) | set(rslora):  # gpt2-lora:0.5 gpt2-rslora:-1.5
        two[name] = 0.5 * lora.get(name, 0) - 1.5 * rslora.get(name, 0)
    save(os.path.join(HERE, "gpt2-two.expected.safetensors"),
         {name: merged(base[name], delta) for name, delta in two.items()})

    # lm_head on a tied model: the output gets lm_head.weight = wte + ΔW.
    head = gpt2_lora("gpt2-head", base, peft_config(r=2, lora_alpha=2, target_modules=["c_attn", "lm_head"],
                                                    fan_in_fan_out=True),
                     ["transformer.h.0.attn.c_attn", "lm_head"], lambda m: 2, lambda m: 2)
    save(os.path.join(HERE, "gpt2-head.expected.safetensors"),
         {name: merged(base["wte.weight" if name == "lm_head.weight" else name], delta) for name, delta in head.items()})

    # BitFit: trained biases under GPT2LMHeadModel names replace the base's.
    biases = {name: ("F32", value[1] + 0.05 * torch.randn(value[1].shape)) for name, value in base.items()
              if name.endswith(".bias") and not name.endswith("attn.bias")}
    save(os.path.join(HERE, "gpt2-bitfit.safetensors"), {"transformer." + n: v for n, v in biases.items()},
         {"format": "pt", "lowrank_method": "bitfit", "lowrank_base_model_type": "gpt2"})
    save(os.path.join(HERE, "gpt2-bitfit.expected.safetensors"), biases)
    save(os.path.join(HERE, "gpt2-adapter-h.safetensors"),
         {"transformer.h.0.attn.adapter.down.weight": ("F32", torch.randn(4, D))},
         {"format": "pt", "lowrank_method": "adapter-h"})
    make_broken_gpt2_adapters(base)


def make_broken_gpt2_adapters(base):
    config = peft_config(target_modules=["c_attn"], fan_in_fan_out=True)
    a, b = lora_pair(4, D, 3 * D)
    key = "base_model.model.transformer.h.{}.attn.c_attn.lora_{}.weight"
    save_adapter("gpt2-wrong-rank", config, {key.format(0, "A"): a, key.format(0, "B"): ("F32", b[1][:, :3])})
    save_adapter("gpt2-missing", config, {key.format(0, "A"): a, key.format(0, "B"): b,
                                          key.format(7, "A"): a, key.format(7, "B"): b})
    save_adapter("gpt2-wrong-shape", config, {key.format(0, "A"): lora_pair(4, 20, 3 * D)[0], key.format(0, "B"): b})


# ------------------------------------------------------------------------------- ViT
def make_vit():
    vit_config = {"model_type": "vit", "hidden_size": D, "num_hidden_layers": LAYERS, "num_attention_heads": 2,
                  "intermediate_size": 32, "image_size": 8, "patch_size": 4, "num_channels": 3,
                  "architectures": ["ViTForImageClassification"]}
    tensors = {"vit.embeddings.cls_token": torch.randn(1, 1, D), "vit.embeddings.position_embeddings": torch.randn(1, 5, D),
               "vit.embeddings.patch_embeddings.projection.weight": 0.1 * torch.randn(D, 3, 4, 4),
               "vit.embeddings.patch_embeddings.projection.bias": 0.1 * torch.randn(D),
               "vit.layernorm.weight": torch.ones(D), "vit.layernorm.bias": torch.zeros(D),
               "classifier.weight": 0.1 * torch.randn(3, D), "classifier.bias": torch.zeros(3)}
    for i in range(LAYERS):
        layer = f"vit.encoder.layer.{i}."
        for linear, (outputs, inputs) in (("attention.attention.query", (D, D)), ("attention.attention.key", (D, D)),
                                          ("attention.attention.value", (D, D)), ("attention.output.dense", (D, D)),
                                          ("intermediate.dense", (32, D)), ("output.dense", (D, 32))):
            tensors[layer + linear + ".weight"] = 0.1 * torch.randn(outputs, inputs)
            tensors[layer + linear + ".bias"] = 0.1 * torch.randn(outputs)
        for norm in ("layernorm_before", "layernorm_after"):
            tensors[layer + norm + ".weight"] = torch.ones(D)
            tensors[layer + norm + ".bias"] = torch.zeros(D)
    base = {name: ("F16", value.half()) for name, value in tensors.items()}
    save(os.path.join(HERE, "vit.safetensors"), base, {"format": "pt", "config": json.dumps(vit_config)})

    # rsLoRA (s = 8 / sqrt(4) = 4) on query and value; the classifier trained in full.
    config = peft_config(use_rslora=True, target_modules=["query", "value"], modules_to_save=["classifier"],
                         task_type="SEQ_CLS")
    adapter, expected = {}, {}
    for i in range(LAYERS):
        for m in ("query", "value"):
            module = f"vit.encoder.layer.{i}.attention.attention.{m}"
            a, b = lora_pair(4, D, D)
            adapter[f"base_model.model.{module}.lora_A.weight"] = a
            adapter[f"base_model.model.{module}.lora_B.weight"] = b
            expected[module + ".weight"] = merged(base[module + ".weight"], 4.0 * product(a, b))
    for name in ("classifier.weight", "classifier.bias"):
        trained = base[name][1].float() + 0.1 * torch.randn(base[name][1].shape)
        adapter["base_model.model." + name] = ("F32", trained)
        expected[name] = ("F16", trained.half())
    save_adapter("vit-lora", config, adapter, {"format": "pt", "lowrank_base_model_type": "vit"})
    save(os.path.join(HERE, "vit-lora.expected.safetensors"), expected)


# ------------------------------------------------------------------------------- CLIP, sharded
def make_clip():
    tensors = {"text_model.embeddings.token_embedding.weight": 0.1 * torch.randn(VOCAB, D),
               "text_model.embeddings.position_embedding.weight": 0.1 * torch.randn(8, D),
               "text_model.final_layer_norm.weight": torch.ones(D), "text_model.final_layer_norm.bias": torch.zeros(D),
               "vision_model.embeddings.class_embedding": torch.randn(D),
               "vision_model.embeddings.patch_embedding.weight": 0.1 * torch.randn(D, 3, 4, 4),
               "vision_model.embeddings.position_embedding.weight": 0.1 * torch.randn(5, D),
               "visual_projection.weight": 0.1 * torch.randn(8, D), "text_projection.weight": 0.1 * torch.randn(8, D),
               "logit_scale": torch.tensor(4.6052)}
    for i in range(LAYERS):
        layer = f"text_model.encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            tensors[layer + f"self_attn.{proj}.weight"] = 0.1 * torch.randn(D, D)
            tensors[layer + f"self_attn.{proj}.bias"] = 0.1 * torch.randn(D)
        tensors[layer + "mlp.fc1.weight"], tensors[layer + "mlp.fc1.bias"] = 0.1 * torch.randn(32, D), torch.zeros(32)
        tensors[layer + "mlp.fc2.weight"], tensors[layer + "mlp.fc2.bias"] = 0.1 * torch.randn(D, 32), torch.zeros(D)
        for norm in ("layer_norm1", "layer_norm2"):
            tensors[layer + norm + ".weight"], tensors[layer + norm + ".bias"] = torch.ones(D), torch.zeros(D)
    base = {name: ("BF16", value.bfloat16()) for name, value in tensors.items()}
    base["text_model.embeddings.position_ids"] = ("I64", torch.arange(8).view(1, 8))

    folder = fresh_folder("clip-sharded")
    shards = [[n for n in base if n.startswith("text_model.") and ".layers.1." not in n and "final" not in n],
              [n for n in base if ".layers.1." in n or "final_layer_norm" in n],
              [n for n in base if not n.startswith("text_model.")]]
    weight_map, total = {}, 0
    for number, names in enumerate(shards, 1):
        file = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        # The reference writer's order: larger dtypes first, then by name.
        order = sorted(names, key=lambda n: (base[n][0] != "I64", n))
        save(os.path.join(folder, file), base, order=order)
        for name in names:
            weight_map[name] = file
            total += to_numpy(base[name][1], base[name][0]).nbytes
    write_json(os.path.join(folder, "model.safetensors.index.json"), {"metadata": {"total_size": total},
                                                                      "weight_map": weight_map})
    write_json(os.path.join(folder, "config.json"), {"model_type": "clip", "projection_dim": 8,
                                                     "architectures": ["CLIPModel"]})
    write_json(os.path.join(folder, "tokenizer_config.json"), {"model_max_length": 8})
    with open(os.path.join(folder, "pytorch_model.bin"), "wb") as f:
        f.write(b"stale pickled weights: never copied into a merged checkpoint")

    # Adapter 1: q_proj and v_proj with lora_bias, tensors stored in F16.
    config = peft_config(r=4, lora_alpha=4, target_modules=["q_proj", "v_proj"], lora_bias=True,
                         task_type="FEATURE_EXTRACTION")
    adapter, deltas = {}, {}
    for i in range(LAYERS):
        for proj in ("q_proj", "v_proj"):
            module = f"text_model.encoder.layers.{i}.self_attn.{proj}"
            a, b = lora_pair(4, D, D, "F16")
            bias = ("F16", 0.1 * torch.randn(D))
            adapter.update({f"base_model.model.{module}.lora_A.weight": a, f"base_model.model.{module}.lora_B.weight": b,
                            f"base_model.model.{module}.lora_B.bias": bias})
            deltas[module + ".weight"] = product(a, b)
            deltas[module + ".bias"] = bias[1].half().double()
    save_adapter("clip-lora", config, adapter, {"format": "pt", "lowrank_base_model_type": "clip"})

    # Adapter 2, given weight 0.5: an embedding LoRA and a Conv2d LoRA, tensors in BF16.
    config = peft_config(r=2, lora_alpha=4, target_modules=["token_embedding", "patch_embedding"])
    embedding_a, embedding_b = ("BF16", torch.randn(2, VOCAB)), ("BF16", 0.1 * torch.randn(D, 2))
    conv_a, conv_b = ("BF16", 0.2 * torch.randn(2, 3, 4, 4)), ("BF16", 0.2 * torch.randn(D, 2, 1, 1))
    save_adapter("clip-embed", config, {
        "base_model.model.text_model.embeddings.token_embedding.lora_embedding_A": embedding_a,
        "base_model.model.text_model.embeddings.token_embedding.lora_embedding_B": embedding_b,
        "base_model.model.vision_model.embeddings.patch_embedding.lora_A.weight": conv_a,
        "base_model.model.vision_model.embeddings.patch_embedding.lora_B.weight": conv_b})
    deltas["text_model.embeddings.token_embedding.weight"] = 0.5 * 2 * product(embedding_a, embedding_b).T
    conv = product(("BF16", conv_a[1].reshape(2, 48)), ("BF16", conv_b[1].reshape(D, 2)))
    deltas["vision_model.embeddings.patch_embedding.weight"] = 0.5 * 2 * conv.reshape(D, 3, 4, 4)
    save(os.path.join(HERE, "clip-two.expected.safetensors"),
         {name: merged(base[name], delta) for name, delta in deltas.items()})


if __name__ == "__main__":
    make_gpt2()
    make_vit()
    make_clip()
