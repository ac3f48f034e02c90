#!/usr/bin/python3
"""lora-predict-routes-inputs.py FOLDER ROWS TIME PROMPT WIDTH LAYERS: the inputs of
bench/lora-predict-routes.sh. Four PEFT adapters for a GPT-2 classifier of WIDTH and LAYERS
(LoRA on c_attn of every layer, ranks 8, 16, 4, 8, two also on the MLP, each with a score
head of its own) and four for the language model (the same, without heads); ROWS rows of
TIME token ids (ids.npy) and of PROMPT tokens (prompts.npy), row i for adapter i mod 4
(routes.txt), and each adapter's rows alone (ids-K.npy, prompts-K.npy). Seeded: the same
files every run."""
import array
import os
import random
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "nn"))
route_adapters = __import__("make-route-adapters")

folder = sys.argv[1]
rows, time, prompt, width, layers = (int(value) for value in sys.argv[2:7])
ADAPTERS = 4
generator = random.Random(1)


def npy(name, values, shape):
    header = "{'descr': '<i4', 'fortran_order': False, 'shape': %s, }" % repr(tuple(shape))
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    with open(os.path.join(folder, name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(array.array("i", values).tobytes())


for k, (rank, mlp) in enumerate([(8, False), (16, True), (4, False), (8, True)]):
    modules = route_adapters.gpt2_modules(["c_attn"] + (["c_fc", "mlp.c_proj"] if mlp else []),
                                          layers=range(layers), width=width)
    route_adapters.adapter(folder, f"classify-{k}", modules, rank, 2 * rank, 10 + k, True, head="score",
                           head_shapes=[("score.weight", (2, width))])
    route_adapters.adapter(folder, f"lm-{k}", modules, rank, 2 * rank, 20 + k, True)
for name, length in (("ids", time), ("prompts", prompt)):
    table = [[generator.randint(1, 50000) for _ in range(length)] for _ in range(rows)]
    npy(f"{name}.npy", [v for row in table for v in row], (rows, length))
    for k in range(ADAPTERS):
        mine = table[k::ADAPTERS]
        npy(f"{name}-{k}.npy", [v for row in mine for v in row], (len(mine), length))
with open(os.path.join(folder, "routes.txt"), "w") as f:
    f.write("".join(f"a{i % ADAPTERS}\n" for i in range(rows)))
