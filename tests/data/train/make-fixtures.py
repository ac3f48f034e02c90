#!/usr/bin/python3
"""Golden fixtures for lora-train, made with Debian's PyTorch on the tiny GPT-2 of
tests/data/nn (gpt2-lm.safetensors: vocabulary 96, 16 positions, width 32, 2 layers):

  lm.u16                  a token stream: fortunes text, one id per printable character
  lora-steps.tsv          the loss of each of 20 steps of LoRA training (tests/e2e/lora-train.sh
                          runs lora-train with the same settings and compares): the same
                          windows of lm.u16 and the same first values of A, both drawn from
                          lowrank's random_generator (reimplemented below), AdamW with warm-up
                          and linear decay, weight decay, clipping, two micro-batches a step
  methods.safetensors     adapter-h, adapter-l and prefix-layer parameters (random, so that
                          they matter), and for each method the loss and the gradient of
                          every parameter it trains, on the ids of tests/data/nn/gpt2-lm.ids.npy
                          (tests/unit/train_methods_test.cpp)

The reference passes run in float64 on the float32 weights.
Run from the repository root: /usr/bin/python3 tests/data/train/make-fixtures.py
"""
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "nn"))
sys.path.insert(0, os.path.join(HERE, "..", "peft"))
import reference_models as rm  # noqa: E402
import safetensors_io  # noqa: E402

NN = os.path.join(HERE, "..", "nn")
MASK = (1 << 64) - 1


# ------------------------------------------------------------ lowrank's random_generator

def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return x, z ^ (z >> 31)


def rotate_left(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK


class Random:
    """xoshiro256** seeded through splitmix64: lib/core/random.cpp."""

    def __init__(self, seed, stream=0):
        _, mixed = splitmix64(stream)
        x = seed ^ mixed
        self.s = []
        for _ in range(4):
            x, word = splitmix64(x)
            self.s.append(word)

    def next(self):
        s = self.s
        result = (rotate_left((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotate_left(s[3], 45)
        return result

    def below(self, bound):
        product = self.next() * bound
        if product & MASK < bound:
            threshold = ((1 << 64) - bound) % bound
            while product & MASK < threshold:
                product = self.next() * bound
        return product >> 64

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53


# ---------------------------------------------------------------------------- the model

def load_gpt2():
    tensors, metadata = safetensors_io.read(os.path.join(NN, "gpt2-lm.safetensors"))
    import json
    config = json.loads(metadata["config"])
    model = rm.GPT2LMHeadModel(config)
    state = {name: torch.from_numpy(array.copy()) for name, (_, array) in tensors.items()}
    for name, p in model.named_parameters():
        p.data.copy_(state[name])
    return model, config


# ------------------------------------------------------------------ 20 steps of LoRA

SEED, RANK, ALPHA, LR, WARMUP, STEPS, BATCH, MICRO, CONTEXT = 7, 4, 8, 5e-3, 3, 20, 2, 2, 15
WINDOW_STREAMS, INIT_STREAMS = 1 << 62, 1 << 61


def make_token_stream():
    with open("/usr/share/games/fortunes/science", encoding="utf-8", errors="replace") as f:
        text = f.read()
    ids = [ord(c) - 32 for c in text if 32 <= ord(c) < 127][:3000]  # printable ASCII: ids 0..94
    np.array(ids, dtype="<u2").tofile(os.path.join(HERE, "lm.u16"))
    return np.array(ids, dtype=np.int64)


def make_lora_steps(stream):
    model, config = load_gpt2()
    for p in model.parameters():
        p.requires_grad_(False)
    d = config["n_embd"]
    stream_number = INIT_STREAMS
    bound = np.float32(1) / np.sqrt(np.float32(d))  # kaiming: U(±1/√in)
    for block in model.transformer.h:
        block.attn.lora = rm.LoraSlices(d, d, [0, 2 * d], RANK, ALPHA)
        for a in block.attn.lora.lora_A:  # q, then v
            random = Random(SEED, stream_number)
            stream_number += 1
            values = [np.float32((2 * random.uniform() - 1) * float(bound)) for _ in range(a.numel())]
            a.data.copy_(torch.tensor(values, dtype=torch.float32).view_as(a))
    model.double()
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=LR, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: s / WARMUP if s < WARMUP else max(0.0, (STEPS - s) / (STEPS - WARMUP)))
    n = len(stream)
    losses = []
    for step in range(STEPS):
        optimizer.zero_grad()
        step_loss = 0.0
        for micro in range(MICRO):
            rows = []
            for i in range(BATCH):
                position = step * BATCH * MICRO + micro * BATCH + i
                start = Random(SEED, WINDOW_STREAMS + position).below(n - CONTEXT)
                rows.append(stream[start:start + CONTEXT + 1])
            window = torch.tensor(np.array(rows))
            logits = model(window[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), window[:, 1:].reshape(-1))
            (loss / MICRO).backward()
            step_loss += loss.item() / MICRO
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(step_loss)
    with open(os.path.join(HERE, "lora-steps.tsv"), "w") as f:
        f.write("step\tloss\n")
        for step, loss in enumerate(losses):
            f.write(f"{step + 1}\t{loss:.8f}\n")


# ------------------------------------------------------- adapters and prefix tuning

class Adapter(torch.nn.Module):
    """h + up(relu(down(LN(h)))), the LayerNorm for Lin's only (lib/nn/adapter.hpp)."""

    def __init__(self, d, r, norm):
        super().__init__()
        self.norm = torch.nn.LayerNorm(d, eps=1e-5) if norm else None
        self.down = torch.nn.Linear(d, r)
        self.up = torch.nn.Linear(r, d)

    def forward(self, h):
        x = self.norm(h) if self.norm is not None else h
        return h + self.up(torch.relu(self.down(x)))


def with_adapter(module, adapter):
    base = module.forward
    module.forward = lambda x: adapter(base(x))


def randomize(module, generator, scale=0.3):
    for p in module.parameters():
        p.data.copy_(torch.randn(p.shape, generator=generator) * scale)
    if getattr(module, "norm", None) is not None:
        module.norm.weight.data += 1


def prefix_forward(model, ids, lengths, prefix, infix, tables):
    """GPT2LMHeadModel with prefix-layer tuning: each row is [prefix][tokens][infix][padding];
    block i's input at the prefix and infix rows is tables[i]; returns the logits at the
    rows lib/nn/gpt2.hpp gathers (the last token's from the infix's end)."""
    t = model.transformer
    B, T = ids.shape
    P, I = prefix, infix
    extended = T + P + I
    rows = torch.zeros(B, extended, dtype=torch.long)
    gathered = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, extended)
    for b in range(B):
        n = int(lengths[b])
        for j in range(T):
            position = P + j if j < n else P + I + j
            rows[b, position] = ids[b, j]
            gathered[b, j] = P + n + I - 1 if j + 1 == n else position
        mask[b, : n + P + I] = 1
    additive = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
    x = t.wte(rows) + t.wpe(torch.arange(extended).unsqueeze(0))
    for i, block in enumerate(t.h):
        x = x.clone()
        for b in range(B):
            n = int(lengths[b])
            x[b, :P] = tables[i][:P]
            x[b, P + n:P + n + I] = tables[i][P:]
        x = block(x, additive)
    x = t.ln_f(x)
    hidden = torch.stack([x[b, gathered[b]] for b in range(B)])
    return hidden @ t.wte.weight.t()


def make_method_fixtures():
    ids = torch.from_numpy(np.load(os.path.join(NN, "gpt2-lm.ids.npy")).astype(np.int64))
    labels = torch.from_numpy(np.load(os.path.join(NN, "gpt2-lm.labels.npy")).astype(np.int64))
    lengths = np.load(os.path.join(NN, "gpt2-lm.lengths.npy"))
    generator = torch.Generator().manual_seed(11)
    out = {}
    for method in ("adapter-h", "adapter-l"):
        model, config = load_gpt2()
        d = config["n_embd"]
        adapters = {}
        for i, block in enumerate(model.transformer.h):
            places = [("attn", block.attn.c_proj), ("mlp", block.mlp.c_proj)] if method == "adapter-h" else \
                [("mlp", block.mlp.c_proj)]
            for place, module in places:
                adapter = Adapter(d, 3, method == "adapter-l")
                randomize(adapter, generator)
                with_adapter(module, adapter)
                adapters[f"transformer.h.{i}.{place}.adapter"] = adapter
        for p in model.parameters():
            p.requires_grad_(False)
        model.double()
        trained = {}
        for name, adapter in adapters.items():
            adapter.double()
            for pname, p in adapter.named_parameters():
                key = f"{name}.{pname.replace('norm.', 'layer_norm.')}"
                out[f"{method}/{key}"] = p.detach().float()
                trained[key] = p
        mask = (labels != -100).long()
        loss = rm.lm_loss(model(ids, mask), labels)
        loss.backward()
        out[f"{method}/loss"] = torch.tensor([loss.item()], dtype=torch.float32)
        for key, p in trained.items():
            out[f"{method}/grad/{key}"] = p.grad.float()

    model, config = load_gpt2()
    for p in model.parameters():
        p.requires_grad_(False)
    model.double()
    P, I, d = 2, 3, config["n_embd"]
    tables = [torch.randn(P + I, d, generator=generator, dtype=torch.float64).requires_grad_(True)
              for _ in model.transformer.h]
    # The loss of the unpadded tokens, as the LM objective counts it.
    logits = prefix_forward(model, ids, lengths, P, I, tables)
    loss = rm.lm_loss(logits, labels)
    loss.backward()
    out["prefix-layer/loss"] = torch.tensor([loss.item()], dtype=torch.float32)
    for i, table in enumerate(tables):
        for name, rows in (("prefix", table[:P]), ("infix", table[P:])):
            out[f"prefix-layer/transformer.h.{i}.{name}"] = rows.detach().float()
        out[f"prefix-layer/grad/transformer.h.{i}.prefix"] = table.grad[:P].float()
        out[f"prefix-layer/grad/transformer.h.{i}.infix"] = table.grad[P:].float()
    rm.save_safetensors(os.path.join(HERE, "methods.safetensors"), out)


if __name__ == "__main__":
    torch.manual_seed(0)
    make_lora_steps(make_token_stream())
    make_method_fixtures()
