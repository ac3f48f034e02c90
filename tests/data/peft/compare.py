#!/usr/bin/python3
"""Compares a merged checkpoint with the expectation made by make-fixtures.py.

    compare.py OUT EXPECTED [--units N] [--base BASE] [--via MERGED]

Every tensor of EXPECTED must be in OUT, with the same dtype and shape, each element within
N units of the dtype's spacing (default 1), plus what float32 arithmetic on numbers of the
tensor's size allows (4 float32 epsilons of its largest magnitude: all that matters for F32
tensors, nothing next to a BF16 or F16 unit). With --base, every other tensor of OUT must be
byte-identical to BASE's. With --via (for a merge then an unmerge, two roundings), units
are those at the largest magnitude of the element in OUT, EXPECTED and MERGED. OUT,
EXPECTED, BASE and MERGED are .safetensors files or checkpoint folders. Prints the largest difference; exits 1 on a mismatch."""
import argparse
import sys

import numpy as np

import safetensors_io as st

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("expected")
parser.add_argument("--units", type=float, default=1.0)
parser.add_argument("--base")
parser.add_argument("--via")
args = parser.parse_args()

out = st.read_checkpoint(args.out)
expected = st.read_checkpoint(args.expected)
via = st.read_checkpoint(args.via) if args.via else {}
problems, worst = [], 0.0
for name, (dtype, want) in expected.items():
    if name not in out:
        problems.append(f"{name}: missing")
        continue
    got_dtype, got = out[name]
    if got_dtype != dtype or got.shape != want.shape:
        problems.append(f"{name}: {got_dtype} {list(got.shape)}, expected {dtype} {list(want.shape)}")
        continue
    if dtype not in ("F32", "F16", "BF16", "F64"):
        if got.tobytes() != want.tobytes():
            problems.append(f"{name}: differs")
        continue
    want64, got64 = st.to_float64(dtype, want), st.to_float64(dtype, got)
    magnitude = np.maximum(np.abs(want64), np.abs(got64))
    if name in via:
        magnitude = np.maximum(magnitude, np.abs(st.to_float64(*via[name])))
    float32_slack = 4 * np.finfo(np.float32).eps * magnitude.max(initial=0)
    units = np.maximum(np.abs(got64 - want64) - float32_slack, 0) / st.spacing(dtype, magnitude)
    worst = max(worst, float(units.max(initial=0)))
    if units.max(initial=0) > args.units:
        problems.append(f"{name}: {float(units.max()):.3g} units off")
if args.base:
    base = st.read_checkpoint(args.base)
    for name, (dtype, got) in out.items():
        if name in expected:
            continue
        if name not in base or base[name][0] != dtype or base[name][1].tobytes() != got.tobytes():
            problems.append(f"{name}: not the base's bytes")
print(f"{len(expected)} tensors compared, largest difference {worst:.3g} units")
for problem in problems:
    print(problem, file=sys.stderr)
sys.exit(1 if problems else 0)
