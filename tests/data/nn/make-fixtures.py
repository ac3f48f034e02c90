#!/usr/bin/python3
"""Golden fixtures for the transformer core (tests/unit/nn_models_test.cpp), made with
Debian's PyTorch: tiny random gpt2, vit and clip models with Hugging Face names and
initialisation (reference_models.py), their inputs, and the outputs, loss and gradient of
every parameter. Weights are float32; the reference pass runs in float64 on those exact
weights, so the expected values carry no float32 rounding of their own.

Run from the repository root: /usr/bin/python3 tests/data/nn/make-fixtures.py
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models as rm  # noqa: E402

OUT = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(OUT, name)


def save_npy(name, array):
    np.save(path(name), array)


def metadata(config):
    return {"format": "pt", "config": json.dumps(config, sort_keys=True)}


def gradients(model, rename=lambda name: name):
    return {rename(name): p.grad.float() for name, p in model.named_parameters() if p.grad is not None}


def float_state(model):
    return {name: p.detach().float() for name, p in model.named_parameters()}


# ----------------------------------------------------------------------------------- GPT-2

GPT2 = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 96, "n_positions": 16,
        "n_embd": 32, "n_layer": 2, "n_head": 4, "n_inner": None, "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5, "initializer_range": 0.02, "bos_token_id": 95, "eos_token_id": 95}


def gpt2_inputs(generator, batch, time, lengths, pad):
    ids = torch.randint(1, GPT2["vocab_size"], (batch, time), generator=generator)
    mask = torch.zeros(batch, time, dtype=torch.long)
    for b, length in enumerate(lengths):
        ids[b, length:] = pad
        mask[b, :length] = 1
    return ids, mask


def make_gpt2_lm():
    torch.manual_seed(1)
    model = rm.GPT2LMHeadModel(GPT2)
    weights = float_state(model)
    generator = torch.Generator().manual_seed(2)
    ids, mask = gpt2_inputs(generator, 3, 10, [10, 7, 10], 0)
    labels = ids.clone()
    labels[mask == 0] = -100

    # LoRA on the q and v slices of c_attn, rank 2, alpha 4, B not zero so that it matters.
    d = GPT2["n_embd"]
    lora = {}
    for i, block in enumerate(model.transformer.h):
        block.attn.lora = rm.LoraSlices(d, d, [0, 2 * d], 2, 4)
        for s, slice_name in enumerate("qv"):
            torch.nn.init.normal_(block.attn.lora.lora_A[s], std=0.3)
            torch.nn.init.normal_(block.attn.lora.lora_B[s], std=0.3)
            prefix = f"transformer.h.{i}.attn.c_attn"
            lora[f"{prefix}.lora_A.{slice_name}.weight"] = block.attn.lora.lora_A[s]
            lora[f"{prefix}.lora_B.{slice_name}.weight"] = block.attn.lora.lora_B[s]
    # and on the token embedding (PEFT's lora_embedding_A/B), rank 2, alpha 4, A not zero.
    wte_lora = rm.LoraEmbedding(GPT2["vocab_size"], d, 2, 4)
    embedding_generator = torch.Generator().manual_seed(3)
    for matrix in (wte_lora.lora_embedding_A, wte_lora.lora_embedding_B):
        matrix.data = torch.randn(matrix.shape, generator=embedding_generator) * 0.3
    lora["transformer.wte.lora_embedding_A"] = wte_lora.lora_embedding_A
    lora["transformer.wte.lora_embedding_B"] = wte_lora.lora_embedding_B

    rm.save_safetensors(path("gpt2-lm.safetensors"), weights, metadata(GPT2))
    rm.save_safetensors(path("gpt2-lora.safetensors"), {k: v.detach().float() for k, v in lora.items()})
    save_npy("gpt2-lm.ids.npy", ids.numpy().astype(np.int32))
    save_npy("gpt2-lm.labels.npy", labels.numpy().astype(np.int32))
    save_npy("gpt2-lm.lengths.npy", mask.sum(1).numpy().astype(np.int32))

    loras = [block.attn.lora for block in model.transformer.h]
    model.double()
    wte_lora.double()
    for name, enabled in (("gpt2-lm", False), ("gpt2-lora", True)):
        for block, branch in zip(model.transformer.h, loras):
            block.attn.lora = branch if enabled else None
        model.transformer.wte_lora = wte_lora if enabled else None
        model.zero_grad()
        logits = model(ids, mask)
        loss = rm.lm_loss(logits, labels)
        loss.backward()
        save_npy(f"{name}.logits.npy", logits.detach().float().numpy())
        save_npy(f"{name}.loss.npy", np.array(loss.item(), dtype=np.float64))
        grads = {k: v for k, v in gradients(model).items() if ".lora." not in k and "wte_lora" not in k}
        if enabled:
            for i, branch in enumerate(loras):
                prefix = f"transformer.h.{i}.attn.c_attn"
                for s, slice_name in enumerate("qv"):
                    grads[f"{prefix}.lora_A.{slice_name}.weight"] = branch.lora_A[s].grad.float()
                    grads[f"{prefix}.lora_B.{slice_name}.weight"] = branch.lora_B[s].grad.float()
            grads["transformer.wte.lora_embedding_A"] = wte_lora.lora_embedding_A.grad.float()
            grads["transformer.wte.lora_embedding_B"] = wte_lora.lora_embedding_B.grad.float()
        rm.save_safetensors(path(f"{name}.grads.safetensors"), grads)

    # Greedy generation of 5 tokens after each row's prompt (its unpadded tokens), the model
    # (without LoRA) run on the whole sequence at each step.
    for block in model.transformer.h:
        block.attn.lora = None
    model.transformer.wte_lora = None
    with open(path("gpt2-lm.generated.txt"), "w") as f:
        for row, length in zip(ids, mask.sum(1)):
            sequence = row[:length].tolist()
            for _ in range(5):
                with torch.no_grad():
                    sequence.append(int(model(torch.tensor([sequence]))[0, -1].argmax()))
            f.write(" ".join(map(str, sequence)) + "\n")

    # The same weights as the hub stores them: no "transformer." prefix, the attn.bias
    # causal-mask buffers, in F16 and BF16; and sharded in two files with a config.json.
    n_positions = GPT2["n_positions"]
    hub = {name[len("transformer."):]: w for name, w in weights.items()}
    for i in range(GPT2["n_layer"]):
        hub[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n_positions, n_positions)).view(1, 1, n_positions, n_positions)
    for dtype, suffix in ((torch.float16, "f16"), (torch.bfloat16, "bf16")):
        rm.save_safetensors(path(f"gpt2-lm.hub-{suffix}.safetensors"), {k: v.to(dtype) for k, v in hub.items()},
                            metadata(GPT2))
    shard_dir = path("gpt2-sharded")
    os.makedirs(shard_dir, exist_ok=True)
    names = sorted(weights)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for shard, shard_names in shards.items():
        rm.save_safetensors(os.path.join(shard_dir, shard), {n: weights[n] for n in shard_names}, {"format": "pt"})
        weight_map.update({n: shard for n in shard_names})
    total = sum(w.numel() * 4 for w in weights.values())
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
    with open(os.path.join(shard_dir, "config.json"), "w") as f:
        json.dump(GPT2, f, indent=2, sort_keys=True)


def make_gpt2_classifier(name, labels_count, regression):
    config = dict(GPT2, architectures=["GPT2ForSequenceClassification"], pad_token_id=0,
                  id2label={str(i): f"LABEL_{i}" for i in range(labels_count)},
                  label2id={f"LABEL_{i}": i for i in range(labels_count)})
    if regression:
        config["problem_type"] = "regression"
    config["num_labels"] = labels_count
    torch.manual_seed(3 + labels_count)
    model = rm.GPT2ForSequenceClassification(config)
    del config["num_labels"]  # transformers does not store it: id2label says it
    rm.save_safetensors(path(f"{name}.safetensors"), float_state(model), metadata(config))
    generator = torch.Generator().manual_seed(4)
    ids, mask = gpt2_inputs(generator, 4, 9, [9, 5, 1, 7], 0)
    save_npy(f"{name}.ids.npy", ids.numpy().astype(np.int32))
    model.double()
    logits = model(ids, mask)
    if regression:
        targets = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)
        loss = torch.nn.functional.mse_loss(logits.view(-1), targets)
        save_npy(f"{name}.targets.npy", targets.numpy().astype(np.float32))
    else:
        targets = torch.tensor([0, 2, 1, 2])
        loss = torch.nn.functional.cross_entropy(logits, targets)
        save_npy(f"{name}.targets.npy", targets.numpy().astype(np.int32))
    loss.backward()
    save_npy(f"{name}.logits.npy", logits.detach().float().numpy())
    save_npy(f"{name}.loss.npy", np.array(loss.item(), dtype=np.float64))
    rm.save_safetensors(path(f"{name}.grads.safetensors"), gradients(model))
    if not regression:
        save_labels(f"{name}.labels.tsv", logits.detach(), [str(i) for i in range(labels_count)])


# --------------------------------------------------------------------------- PEFT adapters

def peft_lora(module, scale):
    """Wraps module.forward with a PEFT LoRA branch: y += scale · (x·Aᵀ)·Bᵀ, A (r, in), B
    (out, r) in nn.Linear orientation whatever the module's storage. Returns (A, B)."""
    weight = module.weight
    n_in, n_out = (weight.shape[0], weight.shape[1]) if isinstance(module, rm.Conv1D) else (weight.shape[1], weight.shape[0])
    a = torch.randn(2, n_in) * 0.3
    b = torch.randn(n_out, 2) * 0.3
    base = module.forward
    module.forward = lambda x: base(x) + scale * (x @ a.t().to(x.dtype)) @ b.t().to(x.dtype)
    return a, b


def write_adapter(folder, config, tensors):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    rm.save_safetensors(os.path.join(folder, "adapter_model.safetensors"), tensors, {"format": "pt"})


def make_adapters():
    """A PEFT adapter for gpt2-lm (LoRA on c_attn, attn.c_proj and wte, rank 2, alpha 4, and an
    alpha_pattern giving attn.c_proj alpha 8), one with rsLoRA for gpt2-classify (LoRA on
    mlp.c_fc, and the score head trained in full, as modules_to_save), and the logits each
    gives."""
    base_config = {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "bias": "none", "fan_in_fan_out": True,
                   "inference_mode": True, "init_lora_weights": True, "lora_dropout": 0.0, "use_dora": False,
                   "use_rslora": False, "rank_pattern": {}, "alpha_pattern": {}, "modules_to_save": None}
    torch.manual_seed(11)
    model = rm.GPT2LMHeadModel(GPT2)
    model.load_state_dict({k: v for k, v in load_safetensors(path("gpt2-lm.safetensors")).items()})
    tensors = {}
    for i, block in enumerate(model.transformer.h):
        for name, module, alpha in (("attn.c_attn", block.attn.c_attn, 4), ("attn.c_proj", block.attn.c_proj, 8)):
            a, b = peft_lora(module, alpha / 2)
            tensors[f"base_model.model.transformer.h.{i}.{name}.lora_A.weight"] = a
            tensors[f"base_model.model.transformer.h.{i}.{name}.lora_B.weight"] = b
    # and on the token embedding (A [r, vocab], B [width, r]), which the tied LM head does not see
    wte_lora = rm.LoraEmbedding(GPT2["vocab_size"], GPT2["n_embd"], 2, 4)
    embedding_generator = torch.Generator().manual_seed(12)
    for matrix in (wte_lora.lora_embedding_A, wte_lora.lora_embedding_B):
        matrix.data = torch.randn(matrix.shape, generator=embedding_generator) * 0.3
    model.transformer.wte_lora = wte_lora
    tensors["base_model.model.transformer.wte.lora_embedding_A"] = wte_lora.lora_embedding_A.detach().clone()
    tensors["base_model.model.transformer.wte.lora_embedding_B"] = wte_lora.lora_embedding_B.detach().clone()
    write_adapter(path("adapter-lm"), dict(base_config, target_modules=["c_attn", "attn.c_proj", "wte"],
                                           alpha_pattern={"attn.c_proj": 8}, task_type="CAUSAL_LM"), tensors)
    ids = torch.from_numpy(np.load(path("gpt2-lm.ids.npy")).astype(np.int64))
    lengths = np.load(path("gpt2-lm.lengths.npy"))
    mask = torch.from_numpy((np.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(np.int64))
    with torch.no_grad():
        save_npy("adapter-lm.logits.npy", model(ids, mask).float().numpy())

    config = json.loads(load_metadata(path("gpt2-classify.safetensors"))["config"])
    config["num_labels"] = 3
    model = rm.GPT2ForSequenceClassification(config)
    model.load_state_dict(load_safetensors(path("gpt2-classify.safetensors")))
    tensors = {}
    for i, block in enumerate(model.transformer.h):
        a, b = peft_lora(block.mlp.c_fc, 4 / 2 ** 0.5)
        tensors[f"base_model.model.transformer.h.{i}.mlp.c_fc.lora_A.weight"] = a
        tensors[f"base_model.model.transformer.h.{i}.mlp.c_fc.lora_B.weight"] = b
    model.score.weight.data.normal_(0, 0.5)
    tensors["base_model.model.score.weight"] = model.score.weight.detach().clone()
    write_adapter(path("adapter-classify"), dict(base_config, target_modules=["c_fc"], use_rslora=True,
                                                 modules_to_save=["score"], task_type="SEQ_CLS"), tensors)
    ids = torch.from_numpy(np.load(path("gpt2-classify.ids.npy")).astype(np.int64))
    with torch.no_grad():
        logits = model(ids, (ids != 0).long())
    save_npy("adapter-classify.logits.npy", logits.float().numpy())


def load_metadata(file):
    with open(file, "rb") as f:
        return json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))["__metadata__"]


def load_safetensors(file):
    with open(file, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        data = f.read()
    header.pop("__metadata__", None)
    return {name: torch.from_numpy(np.frombuffer(data[e["data_offsets"][0]:e["data_offsets"][1]],
                                                 dtype=np.float32).reshape(e["shape"]).copy())
            for name, e in header.items()}


def save_labels(name, logits, labels):
    with open(path(name), "w") as f:
        f.write("index\tprediction\n")
        for i, row in enumerate(logits):
            f.write(f"{i}\t{labels[int(row.argmax())]}\n")


# -------------------------------------------------------------------------------- vit, clip

VISION = {"image_size": 16, "patch_size": 4, "num_channels": 3, "hidden_size": 32, "num_hidden_layers": 2,
          "num_attention_heads": 4, "intermediate_size": 64, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
          "initializer_range": 0.02, "initializer_factor": 1.0}


def make_vit():
    config = dict(VISION, model_type="clip_vision_model", num_labels=5,
                  id2label={str(i): f"class {i}" for i in range(5)},
                  label2id={f"class {i}": i for i in range(5)})
    torch.manual_seed(5)
    model = rm.VisionClassifier(config)
    del config["num_labels"]
    rm.save_safetensors(path("vit.safetensors"), float_state(model), metadata(config))
    images = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    save_npy("vit.patches.npy", rm.patchify(images, 4).numpy().astype(np.float32))
    model.double()
    logits = model(images.double())
    targets = torch.tensor([4, 0, 2])
    loss = torch.nn.functional.cross_entropy(logits, targets)
    loss.backward()
    save_npy("vit.targets.npy", targets.numpy().astype(np.int32))
    save_npy("vit.logits.npy", logits.detach().float().numpy())
    save_labels("vit.labels.tsv", logits.detach(), [f"class {i}" for i in range(5)])
    save_npy("vit.loss.npy", np.array(loss.item(), dtype=np.float64))
    rm.save_safetensors(path("vit.grads.safetensors"), gradients(model))


def make_clip():
    text = {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
            "num_attention_heads": 4, "max_position_embeddings": 12, "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5, "initializer_range": 0.02, "initializer_factor": 1.0, "bos_token_id": 62,
            "eos_token_id": 63, "pad_token_id": 0}
    vision = dict(VISION, hidden_size=24, num_attention_heads=2, patch_size=8, hidden_act="quick_gelu")
    config = {"model_type": "clip", "architectures": ["CLIPModel"], "text_config": text, "vision_config": vision,
              "projection_dim": 16, "logit_scale_init_value": 2.6592, "initializer_factor": 1.0}
    torch.manual_seed(7)
    model = rm.CLIPModel(config)
    rm.save_safetensors(path("clip.safetensors"), float_state(model), metadata(config))
    generator = torch.Generator().manual_seed(8)
    ids = torch.randint(1, 62, (4, 10), generator=generator)
    for b, eos in enumerate([9, 4, 6, 1]):  # <bos> ... <eos>, then padding
        ids[b, 0] = 62
        ids[b, eos] = 63
        ids[b, eos + 1:] = 0
    images = torch.randn(4, 3, 16, 16, generator=generator)
    save_npy("clip.ids.npy", ids.numpy().astype(np.int32))
    save_npy("clip.patches.npy", rm.patchify(images, 8).numpy().astype(np.float32))
    model.double()
    text_embeds, image_embeds, logits = model(ids, images.double())
    loss = rm.clip_loss(logits)
    loss.backward()
    save_npy("clip.text-embeds.npy", text_embeds.detach().float().numpy())
    save_npy("clip.image-embeds.npy", image_embeds.detach().float().numpy())
    save_npy("clip.logits-per-text.npy", logits.detach().float().numpy())
    save_npy("clip.loss.npy", np.array(loss.item(), dtype=np.float64))
    rm.save_safetensors(path("clip.grads.safetensors"), gradients(model))
    # The legacy pooling rule (eos_token_id 2: the position of the largest id).
    model.text_model.eos_token_id = 2
    with torch.no_grad():
        legacy = model.text_projection(model.text_model(ids))
        legacy = legacy / legacy.norm(p=2, dim=-1, keepdim=True)
    save_npy("clip.legacy-text-embeds.npy", legacy.float().numpy())


# ------------------------------------------------------------------------------- optimizer

def make_adamw():
    """Three steps of torch.optim.AdamW (weight decay on the matrix only) after
    clip_grad_norm_ to 0.5, on two parameters: their start, each step's gradients, the end."""
    generator = torch.Generator().manual_seed(12)
    matrix = torch.nn.Parameter(torch.randn(3, 4, generator=generator))
    vector = torch.nn.Parameter(torch.randn(4, generator=generator))
    tensors = {"matrix.start": matrix.detach().clone(), "vector.start": vector.detach().clone()}
    optimizer = torch.optim.AdamW([{"params": [matrix], "weight_decay": 0.1}, {"params": [vector], "weight_decay": 0.0}],
                                  lr=0.01, betas=(0.9, 0.99), eps=1e-8)
    norms = []
    for step in range(3):
        matrix.grad = torch.randn(3, 4, generator=generator)
        vector.grad = torch.randn(4, generator=generator)
        tensors[f"matrix.gradient.{step}"] = matrix.grad.clone()
        tensors[f"vector.gradient.{step}"] = vector.grad.clone()
        norms.append(float(torch.nn.utils.clip_grad_norm_([matrix, vector], 0.5)))
        optimizer.step()
    tensors["matrix.end"] = matrix.detach().clone()
    tensors["vector.end"] = vector.detach().clone()
    tensors["norms"] = torch.tensor(norms)
    rm.save_safetensors(path("adamw.safetensors"), tensors)


if __name__ == "__main__":
    torch.set_num_threads(1)
    make_gpt2_lm()
    make_gpt2_classifier("gpt2-classify", 3, False)
    make_gpt2_classifier("gpt2-regress", 1, True)
    make_vit()
    make_clip()
    make_adapters()
    make_adamw()
