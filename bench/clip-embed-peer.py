"""The clip-embed benchmark's peer: the same CLIP model in PyTorch (plain modules with
Hugging Face's semantics, tests/data/nn/reference_models.py), float32, no_grad: images per
second of the vision tower (with the projection and normalisation) or texts per second of
the text tower, in batches of 32, after one warm-up batch.

usage: clip-embed-peer.py MODEL.safetensors images|texts THREADS BATCHES
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "nn"))
import torch  # noqa: E402
import reference_models as rm  # noqa: E402

path, tower, threads, batches, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
with open(path, "rb") as f:
    length = int.from_bytes(f.read(8), "little")
    config = json.loads(json.loads(f.read(length))["__metadata__"]["config"])
torch.manual_seed(0)
model = rm.CLIPModel(config).eval()
batch = 32
generator = torch.Generator().manual_seed(1)
if tower == "images":
    size = config["vision_config"]["image_size"]
    inputs = torch.randn(batch, 3, size, size, generator=generator)
    run = lambda: model.visual_projection(model.vision_model(inputs))
else:
    vocab = config["text_config"]["vocab_size"]
    ids = torch.randint(0, vocab - 2, (batch, 77), generator=generator)
    ids[:, 0], ids[:, -1] = vocab - 2, vocab - 1  # start and end tokens: all 77 positions count
    run = lambda: model.text_projection(model.text_model(ids))
best = 0
with torch.no_grad():
    embeddings = run()
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(batches):
            embeddings = run()
            embeddings = embeddings / embeddings.norm(dim=-1, keepdim=True)
        best = max(best, batch * batches / (time.perf_counter() - start))
print(f"{best:.2f}")
