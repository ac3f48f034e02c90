"""GPT-2, CLIP and the CLIP-vision classifier ("vit") in plain PyTorch, following Hugging
Face transformers' semantics and parameter names (GPT2LMHeadModel,
GPT2ForSequenceClassification, CLIPModel, CLIPVisionModel + a linear head), for the
golden fixtures (make-fixtures.py) and the training-step benchmark's peer
(bench/train-step-peer.py). transformers itself is not a Debian package; these modules
reproduce its computations operation for operation where it matters for the numbers
(Conv1D as addmm, the mask as the dtype's minimum, the scale on the scores or on q).

Also a safetensors writer (the Python package is not in Debian either)."""

import json
import math
import struct

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_new": lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0)))),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
}


# ----------------------------------------------------------------------------------- GPT-2

class Conv1D(nn.Module):
    """GPT-2's linear layer: weight stored [in, out], y = x·W + b."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        shape = x.size()[:-1] + (self.weight.size(-1),)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(shape)


class LoraSlices(nn.Module):
    """LoRA on slices of a fused projection's output (loralib's MergedLinear, one pair of
    matrices per slice): out[..., slice] += scale · (x·Aᵀ)·Bᵀ."""

    def __init__(self, n_in, width, slices, rank, alpha):
        super().__init__()
        self.slices = slices  # first output column of each slice
        self.width = width
        self.scale = alpha / rank
        self.lora_A = nn.ParameterList([nn.Parameter(torch.empty(rank, n_in)) for _ in slices])
        self.lora_B = nn.ParameterList([nn.Parameter(torch.zeros(width, rank)) for _ in slices])

    def add_to(self, x, out):
        parts = list(out.split(self.width, dim=-1))
        for a, b, column in zip(self.lora_A, self.lora_B, self.slices):
            index = column // self.width
            parts[index] = parts[index] + (x @ a.t()) @ b.t() * self.scale
        return torch.cat(parts, dim=-1)


def lora_on_q_and_v(model, rank, alpha):
    """Freezes a GPT-2 and puts LoRA on the q and v slices of every block's c_attn (loralib's
    MergedLinear layout): A kaiming-uniform as PEFT draws it, B = 0. For the benchmarks' peers."""
    for p in model.parameters():
        p.requires_grad_(False)
    d = model.transformer.wte.weight.shape[1]
    for block in model.transformer.h:
        block.attn.lora = LoraSlices(d, d, [0, 2 * d], rank, alpha)
        for a in block.attn.lora.lora_A:
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))


class LoraEmbedding(nn.Module):
    """PEFT's LoRA on an nn.Embedding: scale · Aᵀ[ids]·Bᵀ, A [r, num], B [dim, r]."""

    def __init__(self, num, dim, rank, alpha):
        super().__init__()
        self.scale = alpha / rank
        self.lora_embedding_A = nn.Parameter(torch.zeros(rank, num))
        self.lora_embedding_B = nn.Parameter(torch.empty(dim, rank))

    def forward(self, ids):
        return F.embedding(ids, self.lora_embedding_A.t()) @ self.lora_embedding_B.t() * self.scale


class GPT2Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_head = config["n_head"]
        d = config["n_embd"]
        self.c_attn = Conv1D(d, 3 * d)
        self.c_proj = Conv1D(d, d)
        self.lora = None

    def forward(self, x, attention_mask):
        B, T, C = x.shape
        qkv = self.c_attn(x)
        if self.lora is not None:
            qkv = self.lora.add_to(x, qkv)
        q, k, v = qkv.split(C, dim=2)
        heads = lambda t: t.view(B, T, self.n_head, C // self.n_head).permute(0, 2, 1, 3)
        q, k, v = heads(q), heads(k), heads(v)
        w = torch.matmul(q, k.transpose(-1, -2)) / (v.size(-1) ** 0.5)
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device)).view(1, 1, T, T)
        w = torch.where(causal, w, torch.tensor(torch.finfo(w.dtype).min, dtype=w.dtype))
        if attention_mask is not None:
            w = w + attention_mask
        w = F.softmax(w, dim=-1)
        y = torch.matmul(w, v).permute(0, 2, 1, 3).contiguous().view(B, T, C)
        return self.c_proj(y)


class GPT2MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config["n_embd"]
        inner = config.get("n_inner") or 4 * d
        self.c_fc = Conv1D(d, inner)
        self.c_proj = Conv1D(inner, d)
        self.act = ACTIVATIONS[config.get("activation_function", "gelu_new")]

    def forward(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        d, eps = config["n_embd"], config.get("layer_norm_epsilon", 1e-5)
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.attn = GPT2Attention(config)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.mlp = GPT2MLP(config)

    def forward(self, x, attention_mask):
        x = x + self.attn(self.ln_1(x), attention_mask)
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config["n_embd"]
        self.wte = nn.Embedding(config["vocab_size"], d)
        self.wpe = nn.Embedding(config["n_positions"], d)
        self.h = nn.ModuleList([GPT2Block(config) for _ in range(config["n_layer"])])
        self.ln_f = nn.LayerNorm(d, eps=config.get("layer_norm_epsilon", 1e-5))
        self.wte_lora = None  # a LoraEmbedding, or none

    def forward(self, ids, attention_mask=None):
        B, T = ids.shape
        additive = None
        if attention_mask is not None:  # (B, T) of 1/0 -> (B, 1, 1, T) of 0/min
            additive = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        x = self.wte(ids) + self.wpe(torch.arange(T).unsqueeze(0))
        if self.wte_lora is not None:
            x = x + self.wte_lora(ids)
        for block in self.h:
            x = block(x, additive)
        return self.ln_f(x)


def gpt2_init(model, config):
    """GPT2PreTrainedModel._init_weights, plus the scaled c_proj initialisation."""
    std = config.get("initializer_range", 0.02)
    for name, module in model.named_modules():
        if isinstance(module, (Conv1D, nn.Linear)):
            module.weight.data.normal_(0.0, std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(0.0, std)
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            p.data.normal_(0.0, std / math.sqrt(2 * config["n_layer"]))


class GPT2LMHeadModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.transformer = GPT2Model(config)
        gpt2_init(self, config)

    def forward(self, ids, attention_mask=None):
        hidden = self.transformer(ids, attention_mask)
        return hidden @ self.transformer.wte.weight.t()  # tied head


def lm_loss(logits, labels):
    """GPT2LMHeadModel's loss: position t predicts label t+1, -100 ignored, mean."""
    shifted = logits[:, :-1, :].reshape(-1, logits.size(-1))
    return F.cross_entropy(shifted, labels[:, 1:].reshape(-1), ignore_index=-100)


class GPT2ForSequenceClassification(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.transformer = GPT2Model(config)
        self.score = nn.Linear(config["n_embd"], config["num_labels"], bias=False)
        self.pad_token_id = config.get("pad_token_id")
        gpt2_init(self, config)

    def forward(self, ids, attention_mask=None):
        hidden = self.transformer(ids, attention_mask)
        logits = self.score(hidden)
        B, T = ids.shape
        if self.pad_token_id is None:
            last = torch.full((B,), T - 1)
        else:  # the last token that is not padding
            not_pad = (ids != self.pad_token_id).int()
            last = (torch.arange(T) * not_pad).argmax(-1)
        return logits[torch.arange(B), last]


# ------------------------------------------------------------------------------------- CLIP

class CLIPAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.scale = (d // heads) ** -0.5
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x, mask):
        B, T, C = x.shape
        heads = lambda t: t.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        q, k, v = heads(self.q_proj(x) * self.scale), heads(self.k_proj(x)), heads(self.v_proj(x))
        w = q @ k.transpose(-1, -2)
        if mask is not None:
            w = w + mask
        w = F.softmax(w, dim=-1)
        return self.out_proj((w @ v).transpose(1, 2).reshape(B, T, C))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.self_attn = CLIPAttention(d, c["num_attention_heads"])
        self.layer_norm1 = nn.LayerNorm(d, eps=c.get("layer_norm_eps", 1e-5))
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(d, c["intermediate_size"])
        self.mlp.fc2 = nn.Linear(c["intermediate_size"], d)
        self.act = ACTIVATIONS[c.get("hidden_act", "quick_gelu")]
        self.layer_norm2 = nn.LayerNorm(d, eps=c.get("layer_norm_eps", 1e-5))

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp.fc2(self.act(self.mlp.fc1(self.layer_norm2(x))))


class CLIPEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, x, mask=None):
        for layer in self.layers:
            x = layer(x, mask)
        return x


class CLIPTextTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.embeddings = nn.Module()
        self.embeddings.token_embedding = nn.Embedding(c["vocab_size"], d)
        self.embeddings.position_embedding = nn.Embedding(c["max_position_embeddings"], d)
        self.encoder = CLIPEncoder(c)
        self.final_layer_norm = nn.LayerNorm(d, eps=c.get("layer_norm_eps", 1e-5))
        self.eos_token_id = c.get("eos_token_id", 2)

    def forward(self, ids):
        B, T = ids.shape
        e = self.embeddings
        x = e.token_embedding(ids) + e.position_embedding(torch.arange(T).unsqueeze(0))
        causal = torch.full((T, T), torch.finfo(torch.float32).min).triu(1)[None, None]
        x = self.final_layer_norm(self.encoder(x, causal))
        if self.eos_token_id == 2:  # the legacy rule: the largest id is the end of text
            last = ids.argmax(-1)
        else:  # the first end-of-text token
            last = (ids == self.eos_token_id).int().argmax(-1)
        return x[torch.arange(B), last]


class CLIPVisionTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, p = c["hidden_size"], c["patch_size"]
        self.patches = (c["image_size"] // p) ** 2
        self.embeddings = nn.Module()
        self.embeddings.class_embedding = nn.Parameter(torch.empty(d))
        self.embeddings.patch_embedding = nn.Conv2d(c.get("num_channels", 3), d, p, stride=p, bias=False)
        self.embeddings.position_embedding = nn.Embedding(self.patches + 1, d)
        self.pre_layrnorm = nn.LayerNorm(d, eps=c.get("layer_norm_eps", 1e-5))
        self.encoder = CLIPEncoder(c)
        self.post_layernorm = nn.LayerNorm(d, eps=c.get("layer_norm_eps", 1e-5))

    def forward(self, pixels):
        e = self.embeddings
        B = pixels.shape[0]
        patches = e.patch_embedding(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([e.class_embedding.expand(B, 1, -1), patches], dim=1)
        x = x + e.position_embedding(torch.arange(self.patches + 1).unsqueeze(0))
        x = self.encoder(self.pre_layrnorm(x))
        return self.post_layernorm(x[:, 0, :])  # pooler_output


def clip_tower_init(tower, c, factor=1.0):
    """CLIPPreTrainedModel._init_weights for one tower."""
    d, layers = c["hidden_size"], c["num_hidden_layers"]
    for module in tower.modules():
        if isinstance(module, CLIPAttention):
            in_std = d ** -0.5 * (2 * layers) ** -0.5 * factor
            for proj in (module.q_proj, module.k_proj, module.v_proj):
                nn.init.normal_(proj.weight, std=in_std)
            nn.init.normal_(module.out_proj.weight, std=d ** -0.5 * factor)
        elif isinstance(module, CLIPEncoderLayer):
            nn.init.normal_(module.mlp.fc1.weight, std=(2 * d) ** -0.5 * factor)
            nn.init.normal_(module.mlp.fc2.weight, std=d ** -0.5 * (2 * layers) ** -0.5 * factor)
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
    e = tower.embeddings
    if hasattr(e, "token_embedding"):
        nn.init.normal_(e.token_embedding.weight, std=0.02 * factor)
        nn.init.normal_(e.position_embedding.weight, std=0.02 * factor)
    else:
        nn.init.normal_(e.class_embedding, std=d ** -0.5 * factor)
        nn.init.normal_(e.patch_embedding.weight, std=c.get("initializer_range", 0.02) * factor)
        nn.init.normal_(e.position_embedding.weight, std=c.get("initializer_range", 0.02) * factor)


class CLIPModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        t, v = config["text_config"], config["vision_config"]
        self.text_model = CLIPTextTransformer(t)
        self.vision_model = CLIPVisionTransformer(v)
        self.text_projection = nn.Linear(t["hidden_size"], config["projection_dim"], bias=False)
        self.visual_projection = nn.Linear(v["hidden_size"], config["projection_dim"], bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(config.get("logit_scale_init_value", 2.6592)))
        clip_tower_init(self.text_model, t)
        clip_tower_init(self.vision_model, v)
        nn.init.normal_(self.text_projection.weight, std=t["hidden_size"] ** -0.5)
        nn.init.normal_(self.visual_projection.weight, std=v["hidden_size"] ** -0.5)

    def forward(self, ids, pixels):
        """(text_embeds, image_embeds, logits_per_text), embeddings L2-normalised."""
        text = self.text_projection(self.text_model(ids))
        image = self.visual_projection(self.vision_model(pixels))
        text = text / text.norm(p=2, dim=-1, keepdim=True)
        image = image / image.norm(p=2, dim=-1, keepdim=True)
        return text, image, self.logit_scale.exp() * text @ image.t()


def clip_loss(logits_per_text):
    target = torch.arange(logits_per_text.shape[0])
    return (F.cross_entropy(logits_per_text, target) + F.cross_entropy(logits_per_text.t(), target)) / 2


class VisionClassifier(nn.Module):
    """The "vit" architecture: CLIPVisionModel's pooled output (post-LayerNorm class
    token) through a linear head named `classifier`."""

    def __init__(self, config):
        super().__init__()
        self.vision_model = CLIPVisionTransformer(config)
        self.classifier = nn.Linear(config["hidden_size"], config["num_labels"])
        clip_tower_init(self.vision_model, config)
        nn.init.normal_(self.classifier.weight, std=config["hidden_size"] ** -0.5)
        self.classifier.bias.data.zero_()

    def forward(self, pixels):
        return self.classifier(self.vision_model(pixels))


def patchify(images, p):
    """(N, C, H, W) -> (N, (H/p)·(W/p), C·p·p), patches row-major over the grid, each
    flattened in (C, p, p) order: what vit-patchify writes."""
    n, c, h, w = images.shape
    x = images.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(n, (h // p) * (w // p), c * p * p)


# ------------------------------------------------------------------------------ safetensors

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int32: "I32",
          torch.int64: "I64", torch.uint8: "U8"}


def save_safetensors(path, tensors, metadata=None):
    """Writes tensors (name -> tensor) in the reference layout: larger dtypes first, then by
    name; header padded with spaces to a multiple of 8."""
    rank = ["I64", "F32", "I32", "BF16", "F16", "U8"]
    order = sorted(tensors, key=lambda name: (rank.index(DTYPES[tensors[name].dtype]), name))
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in order:
        t = tensors[name].detach().contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def state_dict(model, rename=lambda name: name):
    """Parameters by their Hugging Face names (LoRA and tied duplicates excluded)."""
    return {rename(name): p for name, p in model.named_parameters() if ".lora." not in name}
