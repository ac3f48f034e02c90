"""The training-step benchmark's peer: the same GPT-2-shaped model in PyTorch (plain
modules with Hugging Face's semantics, tests/data/nn/reference_models.py), one step =
forward, LM loss, backward, AdamW. Prints tokens/s and the peak resident memory.

usage: train-step-peer.py full|lora THREADS STEPS
"""
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "nn"))
import torch  # noqa: E402
import reference_models as rm  # noqa: E402

method, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
config = {"vocab_size": 8192, "n_positions": 128, "n_embd": 256, "n_layer": 4, "n_head": 4}
batch, time_steps, rank = 16, 128, 8

model = rm.GPT2LMHeadModel(config)
if method == "lora":
    rm.lora_on_q_and_v(model, rank, 2 * rank)
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

generator = torch.Generator().manual_seed(1)
ids = torch.randint(0, config["vocab_size"], (batch, time_steps), generator=generator)


def step():
    optimizer.zero_grad(set_to_none=True)
    loss = rm.lm_loss(model(ids), ids)
    loss.backward()
    optimizer.step()
    return loss.item()


for _ in range(2):  # warm-up: allocations, thread pools
    step()
start = time.perf_counter()
for _ in range(steps):
    step()
elapsed = time.perf_counter() - start
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{batch * time_steps * steps / elapsed:.1f} {peak_mb:.1f}")
