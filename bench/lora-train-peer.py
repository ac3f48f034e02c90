"""lora-train benchmark's peer: the same training run in PyTorch. The GPT-2-shaped model of
the training-step benchmark (tests/data/nn/reference_models.py), trained as lora-train
trains it: each step a batch of random windows of the token stream, forward, LM loss,
backward, clip_grad_norm_(1.0), AdamW (weight decay 0.01) with linear decay; LoRA r=8 on the
q and v slices of c_attn (loralib's MergedLinear layout), the same and on the token embedding
(lora-wte, PEFT's LoRA on an embedding), or full fine-tuning. Prints the tokens per second
of the steps after the first two.
With RANKS > 1, data-parallel as PyTorch does it (lora-train-mpi.sh's peer): RANKS processes
(torch.multiprocessing) of BATCH / RANKS windows each, DistributedDataParallel over the gloo
backend on loopback, which all-reduces the gradients in buckets during backward; tokens per
second of all ranks together, timed on rank 0.

usage: lora-train-peer.py full|lora|lora-wte TOKENS.u16 STEPS BATCH CONTEXT THREADS [RANKS]
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "nn"))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import reference_models as rm  # noqa: E402

method, path, steps, batch, context, threads = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
ranks = int(sys.argv[7]) if len(sys.argv) > 7 else 1


def train(rank):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = {"vocab_size": 8192, "n_positions": 128, "n_embd": 256, "n_layer": 4, "n_head": 4}
    lora_rank = 8
    stream = np.memmap(path, dtype="<u2", mode="r")

    model = rm.GPT2LMHeadModel(config)
    if method.startswith("lora"):
        rm.lora_on_q_and_v(model, lora_rank, lora_rank)
    if method == "lora-wte":
        model.transformer.wte_lora = rm.LoraEmbedding(config["vocab_size"], config["n_embd"], lora_rank, lora_rank)
        torch.nn.init.normal_(model.transformer.wte_lora.lora_embedding_B)
    trained = [p for p in model.parameters() if p.requires_grad]
    if ranks > 1:
        torch.distributed.init_process_group("gloo", rank=rank, world_size=ranks)
        model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.AdamW(trained, lr=2e-4, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, (steps - s) / steps))
    generator = np.random.default_rng(1 + rank)
    share = batch // ranks

    def step():
        starts = generator.integers(0, len(stream) - context, share)
        windows = torch.from_numpy(np.stack([stream[s:s + context + 1] for s in starts]).astype(np.int64))
        optimizer.zero_grad(set_to_none=True)
        logits = model(windows[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), windows[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        schedule.step()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps - 2):
        step()
    if rank == 0:
        print(f"{share * ranks * context * (steps - 2) / (time.perf_counter() - start):.1f}", flush=True)
    if ranks > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":  # the spawned ranks import this file
    if ranks == 1:
        train(0)
    else:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29533")
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        torch.multiprocessing.spawn(train, nprocs=ranks)
