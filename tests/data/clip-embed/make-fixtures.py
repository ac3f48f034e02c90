#!/usr/bin/python3
"""Golden fixtures for clip-embed (tests/e2e/clip-embed.sh), made with Debian's PyTorch,
Pillow and NumPy, independently of the tool:

  tiny-clip/             a random CLIPModel with Hugging Face's names (reference_models.py),
                         in the hub's layout: config.json, model.safetensors (no metadata),
                         vocab.json and merges.txt (the CLIP-style tokenizer of tests/data/bpe)
  captions.txt           captions, one per line (ASCII; the last longer than the context)
  classes.txt            class names for zero-shot classification
  images.npy / texts.npy the L2-normalised embeddings of the images and captions
  patches.npy            the images' patches, as vit-patchify writes them
  ids.npy                the captions' token ids (int32, padded with <|endoftext|>)
  similarity.npy         images × captions cosines
  zeroshot.tsv           every class, most likely first, with probabilities, for the
                         templates 'a photo of a {}.' and 'a drawing of a {}.' averaged
  report.tsv             alignment and uniformity (Wang & Isola) of image i with caption i

Images are preprocessed as CLIPImageProcessor does (Pillow bicubic resize of the shorter
side, floor center crop, float32 normalisation) and captions tokenised with OpenAI's
algorithm (lower case, pieces, "</w>", lowest-rank merge first), both written out here.
The reference pass runs in float64 on the float32 weights.

Run from the repository root: /usr/bin/python3 tests/data/clip-embed/make-fixtures.py
Also: make-fixtures.py check MODEL PATCHES IDS IMAGES TEXTS: embeds with the model at
MODEL (any size, e.g. model-init's clip-vit-b-32) and exits 1 unless our embeddings
IMAGES and TEXTS agree with PyTorch's to 1e-4.
And: make-fixtures.py hub-layout SOURCE TARGET: the model of the folder SOURCE laid out as
the hub's openai/clip-vit-base-patch32 is: config.json with the fields save_pretrained
writes for it (legacy token ids bos 0, eos 2, pad 1; text_config_dict and
vision_config_dict; id2label placeholders...), position_ids buffers (I64) in
model.safetensors, the tokenizer files and preprocessor_config.json.
"""
import json
import math
import os
import re
import shutil
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..")
sys.path.insert(0, os.path.join(HERE, "..", "nn"))
import reference_models as rm  # noqa: E402

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
IMAGES = ["photo.jpg", "portrait.jpg", "rgb.png", "palette.gif", "la.png", "gray.jpg"]
CAPTIONS = ["A photo of a cat.", "a DOG on the grass", "It's 2024, isn't it?", "", "red  green\tblue!!",
            "a very long caption that goes on and on, longer than the context of the tiny model by far"]
CLASSES = ["cat", "dog", "red car", "tree", "grass"]
TEMPLATES = ["a photo of a {}.", "a drawing of a {}."]


def path(*names):
    return os.path.join(HERE, *names)


# ---------------------------------------------------------------------- images and captions

def preprocess(file, size):
    image = Image.open(file).convert("RGB")
    width, height = image.size
    short, long = min(width, height), max(width, height)
    new = (size, int(size * long / short)) if width <= height else (int(size * long / short), size)
    image = image.resize(new, Image.BICUBIC)
    pixels = np.asarray(image)
    top, left = (pixels.shape[0] - size) // 2, (pixels.shape[1] - size) // 2
    x = pixels[top:top + size, left:left + size].astype(np.float32) / np.float32(255)
    return np.ascontiguousarray(((x - MEAN) / STD).transpose(2, 0, 1))


def bytes_to_unicode():
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    others = [b for b in range(256) if b not in printable]
    table = {b: chr(b) for b in printable}
    table.update({b: chr(256 + i) for i, b in enumerate(others)})
    return table


class ClipTokenizer:
    """OpenAI's CLIP tokenizer for ASCII text."""
    PIECES = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")

    def __init__(self, folder):
        self.vocab = json.load(open(os.path.join(folder, "vocab.json")))
        lines = open(os.path.join(folder, "merges.txt")).read().split("\n")[1:]
        self.ranks = {tuple(line.split()): rank for rank, line in enumerate(lines) if line}
        self.bytes = bytes_to_unicode()

    def bpe(self, piece):
        word = [self.bytes[b] for b in piece.encode()]
        word[-1] += "</w>"
        while len(word) > 1:
            pairs = [(self.ranks.get((a, b), math.inf), i) for i, (a, b) in enumerate(zip(word, word[1:]))]
            rank, i = min(pairs)
            if rank == math.inf:
                break
            word[i:i + 2] = [word[i] + word[i + 1]]
        return [self.vocab[token] for token in word]

    def encode(self, text, context):
        text = " ".join(text.split()).lower()
        ids = [token for piece in self.PIECES.findall(text) for token in self.bpe(piece)]
        bos, eos = self.vocab["<|startoftext|>"], self.vocab["<|endoftext|>"]
        ids = [bos] + ids[:context - 2] + [eos]
        return ids + [eos] * (context - len(ids))


# ------------------------------------------------------------------------------------ model

def tiny_config(vocab):
    text = {"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "max_position_embeddings": 16, "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5, "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"], "pad_token_id": vocab["<|endoftext|>"]}
    vision = {"image_size": 32, "patch_size": 8, "num_channels": 3, "hidden_size": 24, "num_hidden_layers": 2,
              "num_attention_heads": 2, "intermediate_size": 48, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}
    return {"model_type": "clip", "architectures": ["CLIPModel"], "text_config": text, "vision_config": vision,
            "projection_dim": 16, "logit_scale_init_value": 2.6592}


def embed(model, patches, ids):
    """L2-normalised image and text embeddings, in float64."""
    with torch.no_grad():
        image = model.visual_projection(model.vision_model(unpatchify(patches, model)))
        text = model.text_projection(model.text_model(torch.from_numpy(ids.astype(np.int64))))
    return (image / image.norm(dim=-1, keepdim=True)).numpy(), (text / text.norm(dim=-1, keepdim=True)).numpy()


def unpatchify(patches, model):
    """(N, patches, C·P·P) -> (N, C, H, W) for the Conv2d patch embedding."""
    conv = model.vision_model.embeddings.patch_embedding
    c, p = conv.in_channels, conv.kernel_size[0]
    n, count, _ = patches.shape
    grid = int(round(count ** 0.5))
    x = torch.from_numpy(patches).double().reshape(n, grid, grid, c, p, p).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(n, c, grid * p, grid * p)


def read_safetensors(file):
    """(name -> float64 tensor, __metadata__) of an F32 safetensors file."""
    data = open(file, "rb").read()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__", None)
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        if entry["dtype"] == "F32":
            values = np.frombuffer(data[8 + length + begin:8 + length + end], np.float32)
            tensors[name] = torch.from_numpy(values.astype(np.float64).reshape(entry["shape"]))
    return tensors, metadata


def load_model(folder_or_file):
    """A CLIP model from a safetensors file (config in its metadata) or a hub-layout folder."""
    tensors, metadata = read_safetensors(folder_or_file if folder_or_file.endswith(".safetensors")
                                         else os.path.join(folder_or_file, "model.safetensors"))
    if metadata and "config" in metadata:
        config = json.loads(metadata["config"])
    else:
        config = json.load(open(os.path.join(folder_or_file, "config.json")))
    model = rm.CLIPModel(config).double()
    model.load_state_dict({name: tensors[name] for name, _ in model.named_parameters()})
    return model


def close(expected, actual, name):
    expected, actual = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
    if expected.shape != actual.shape:
        sys.exit(f"{name}: shape {actual.shape}, expected {expected.shape}")
    worst = np.abs(expected - actual).max() / max(np.abs(expected).max(), 1e-30)
    if worst > 1e-4:
        sys.exit(f"{name}: differs from PyTorch by {worst:.3g} of the largest value (tolerance 1e-4)")


def check(model_path, patches, ids, images, texts):
    model = load_model(model_path)
    image, text = embed(model, np.load(patches), np.load(ids))
    close(image, np.load(images), images)
    close(text, np.load(texts), texts)


# -------------------------------------------------------------------------------- fixtures

def report(images, texts, logit_scale):
    pdist = lambda x: torch.pdist(torch.from_numpy(x), p=2).pow(2)
    rows = [("pairs", len(images)),
            ("alignment", float(((images - texts) ** 2).sum(1).mean())),
            ("uniformity_images", float(pdist(images).mul(-2).exp().mean().log())),
            ("uniformity_texts", float(pdist(texts).mul(-2).exp().mean().log())),
            ("positive_cosine", float((images * texts).sum(1).mean()))]
    cosines = images @ texts.T
    n = len(images)
    rows.append(("negative_cosine", float((cosines.sum() - np.trace(cosines)) / (n * (n - 1)))))
    rows.append(("logit_scale", logit_scale))
    return rows


def make():
    folder = path("tiny-clip")
    os.makedirs(folder, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(HERE, "..", "bpe", "clip", name), os.path.join(folder, name))
    tokenizer = ClipTokenizer(folder)
    config = tiny_config(tokenizer.vocab)
    torch.manual_seed(11)
    model = rm.CLIPModel(config)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    rm.save_safetensors(os.path.join(folder, "model.safetensors"),
                        {name: p.detach().float() for name, p in model.named_parameters()}, {"format": "pt"})
    model.double()

    size, patch = config["vision_config"]["image_size"], config["vision_config"]["patch_size"]
    pixels = [preprocess(os.path.join(HERE, "..", "image", name), size) for name in IMAGES]
    patches = np.stack([rm.patchify(torch.from_numpy(x[None]), patch)[0].numpy() for x in pixels])
    np.save(path("patches.npy"), patches.astype(np.float32))
    context = config["text_config"]["max_position_embeddings"]
    ids = np.array([tokenizer.encode(caption, context) for caption in CAPTIONS], np.int32)
    np.save(path("ids.npy"), ids)
    with open(path("captions.txt"), "w") as f:
        f.write("".join(caption + "\n" for caption in CAPTIONS))
    with open(path("images.txt"), "w") as f:
        f.write("".join(f"tests/data/image/{name}\n" for name in IMAGES))
    image, text = embed(model, patches, ids)
    np.save(path("images.npy"), image.astype(np.float32))
    np.save(path("texts.npy"), text.astype(np.float32))
    np.save(path("similarity.npy"), (image @ text.T).astype(np.float32))

    with open(path("classes.txt"), "w") as f:
        f.write("".join(name + "\n" for name in CLASSES))
    prompts = [template.format(name) for name in CLASSES for template in TEMPLATES]
    prompt_ids = np.array([tokenizer.encode(prompt, context) for prompt in prompts], np.int32)
    _, prompt_embeddings = embed(model, patches[:1], prompt_ids)
    classes = prompt_embeddings.reshape(len(CLASSES), len(TEMPLATES), -1).mean(1)
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)
    logits = math.exp(float(model.logit_scale)) * image @ classes.T
    probabilities = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    with open(path("zeroshot.tsv"), "w") as f:
        f.write("index" + "".join(f"\tlabel{k}\tprobability{k}" for k in range(1, len(CLASSES) + 1)) + "\n")
        for i, row in enumerate(probabilities):
            order = np.argsort(-row, kind="stable")
            f.write(f"{i}" + "".join(f"\t{CLASSES[c]}\t{row[c]:.6f}" for c in order) + "\n")
    n = len(IMAGES)
    with open(path("report.tsv"), "w") as f:
        for name, value in report(image[:n], text[:n], float(model.logit_scale)):
            f.write(f"{name}\t{value}\n" if name == "pairs" else f"{name}\t{value:.6f}\n")


# The fields PretrainedConfig.to_dict writes for every sub-config of hub checkpoints saved
# by transformers 4.2x, with their default values.
GENERIC_FIELDS = {
    "_name_or_path": "", "add_cross_attention": False, "architectures": None, "bad_words_ids": None,
    "chunk_size_feed_forward": 0, "cross_attention_hidden_size": None, "decoder_start_token_id": None,
    "diversity_penalty": 0.0, "do_sample": False, "early_stopping": False, "encoder_no_repeat_ngram_size": 0,
    "exponential_decay_length_penalty": None, "finetuning_task": None, "forced_bos_token_id": None,
    "forced_eos_token_id": None, "id2label": {"0": "LABEL_0", "1": "LABEL_1"}, "is_decoder": False,
    "is_encoder_decoder": False, "label2id": {"LABEL_0": 0, "LABEL_1": 1}, "length_penalty": 1.0, "max_length": 20,
    "min_length": 0, "no_repeat_ngram_size": 0, "num_beam_groups": 1, "num_beams": 1, "num_return_sequences": 1,
    "output_attentions": False, "output_hidden_states": False, "output_scores": False, "prefix": None,
    "problem_type": None, "pruned_heads": {}, "remove_invalid_values": False, "repetition_penalty": 1.0,
    "return_dict": True, "return_dict_in_generate": False, "sep_token_id": None, "task_specific_params": None,
    "temperature": 1.0, "tf_legacy_loss": False, "tie_encoder_decoder": False, "tie_word_embeddings": True,
    "tokenizer_class": None, "top_k": 50, "top_p": 1.0, "torch_dtype": None, "torchscript": False,
    "transformers_version": "4.21.0.dev0", "typical_p": 1.0, "use_bfloat16": False,
    "attention_dropout": 0.0, "dropout": 0.0, "initializer_factor": 1.0, "initializer_range": 0.02,
}


def hub_layout(source, target):
    config = json.load(open(os.path.join(source, "config.json")))
    text, vision = config["text_config"], config["vision_config"]
    hub = {
        "_commit_hash": None, "_name_or_path": "openai/clip-vit-base-patch32", "architectures": ["CLIPModel"],
        "initializer_factor": 1.0, "logit_scale_init_value": 2.6592, "model_type": "clip",
        "projection_dim": config["projection_dim"], "torch_dtype": "float32", "transformers_version": None,
        "text_config": {**GENERIC_FIELDS, **text, "model_type": "clip_text_model", "bos_token_id": 0,
                        "eos_token_id": 2, "pad_token_id": 1, "projection_dim": config["projection_dim"]},
        "text_config_dict": None,
        "vision_config": {**GENERIC_FIELDS, **vision, "model_type": "clip_vision_model",
                          "projection_dim": config["projection_dim"]},
        "vision_config_dict": None,
    }
    # Older saves also carry the sub-configs whole as text_config_dict and vision_config_dict
    # (transformers lets them override text_config and vision_config).
    hub["text_config_dict"], hub["vision_config_dict"] = dict(hub["text_config"]), dict(hub["vision_config"])
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "config.json"), "w") as f:
        json.dump(hub, f, indent=2, sort_keys=True)
    tensors, _ = read_safetensors(os.path.join(source, "model.safetensors"))
    tensors = {name: value.float() for name, value in tensors.items()}
    tensors["text_model.embeddings.position_ids"] = torch.arange(text["max_position_embeddings"])[None]
    patches = (vision["image_size"] // vision["patch_size"]) ** 2
    tensors["vision_model.embeddings.position_ids"] = torch.arange(patches + 1)[None]
    rm.save_safetensors(os.path.join(target, "model.safetensors"), tensors, {"format": "pt"})
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(source, name), os.path.join(target, name))
    extras = {
        "special_tokens_map.json": {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                                    "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"},
        "tokenizer_config.json": {"do_lower_case": True, "model_max_length": 77, "errors": "replace",
                                  "tokenizer_class": "CLIPTokenizer"},
        "preprocessor_config.json": {"crop_size": vision["image_size"], "do_center_crop": True,
                                     "do_normalize": True, "do_resize": True,
                                     "feature_extractor_type": "CLIPFeatureExtractor",
                                     "image_mean": MEAN.tolist(), "image_std": STD.tolist(), "resample": 3,
                                     "size": vision["image_size"]},
    }
    for name, value in extras.items():
        with open(os.path.join(target, name), "w") as f:
            json.dump(value, f, indent=2)


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "check":
        check(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "hub-layout":
        hub_layout(*sys.argv[2:])
    else:
        make()
