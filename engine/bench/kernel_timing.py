"""Milliseconds per call of the native kernels' matmul on GGUF weights, beside torch.

A timing script, not a test: `python -m engine.bench.kernel_timing [--threads 2]`. For each
weight shape (N, K) and rows M it times `engine.model.kernels.matmul` on random valid blocks
of each GGUF type (Q4_K/Q5_K/Q6_K only where K is a multiple of 256), torch's float32
`F.linear` and oneDNN's `_linear_pointwise` on a weight packed by `_reorder_linear_weight`
(what engine/packed_linear.py runs), and prints a markdown table. Weights are reused across
calls, so layers that fit the CPU's caches are timed warm; a forward pass over a whole model
streams them from memory. Timings on a busy machine are noisy: the header gives the load.

`--clock thread` measures the calling thread's CPU time (only with `--threads 1`): stable
on a busy machine, where wall time also counts the time the scheduler gives to others.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

SHAPES = [(4864, 896), (896, 4864), (8960, 1536), (1536, 8960), (151936, 896), (151936, 1536)]
TYPES = ["Q4_K", "Q5_0", "Q6_K", "Q8_0", "F32"]
ROWS = [1, 2, 4, 8, 16, 64, 512]
# Where each type keeps its float16 scale(s) in a block: set to sane values (random bytes
# there could be NaN or huge).
SCALE_OFFSETS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
                 "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}


def random_gguf_bytes(name: str, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """[n, row_bytes] of valid blocks: random quants, float16 scales of 0.01."""
    t = GGMLQuantizationType[name]
    if name == "F32":
        return rng.standard_normal((n, k), dtype=np.float32).view(np.uint8)
    if name in ("F16", "BF16"):
        w = torch.randn(n, k, dtype=torch.float16 if name == "F16" else torch.bfloat16)
        return w.view(torch.uint8).numpy()
    block, size = GGML_QUANT_SIZES[t]
    raw = rng.integers(0, 256, size=(n, k // block, size), dtype=np.uint8)
    scale = np.full((n, k // block), 0.01, np.float16).view(np.uint8).reshape(n, k // block, 2)
    for offset in SCALE_OFFSETS[name]:
        raw[..., offset:offset + 2] = scale
    return raw.reshape(n, -1)


def time_call(fn, clock, budget: float) -> float:
    """Median milliseconds of fn after one warm-up call, over at least 3 calls or `budget`
    seconds (at least one call for slow ones)."""
    fn()
    times: list[float] = []
    started = time.perf_counter()
    while True:
        t0 = clock()
        fn()
        times.append(clock() - t0)
        spent = time.perf_counter() - started
        if (len(times) >= 3 and spent >= budget) or spent >= 4 * budget or len(times) >= 200:
            break
    return statistics.median(times) * 1e3


def time_shape(n: int, k: int, rows: list[int], types: list[str], clock, budget: float,
               rng: np.random.Generator):
    """Yields (M, milliseconds per column) for one weight shape; None where a type's block
    does not divide K."""
    from ..model import kernels

    dense = torch.randn(n, k)
    packed = torch.ops.mkldnn._reorder_linear_weight(dense)
    weights = {}
    for name in types:
        block = GGML_QUANT_SIZES[GGMLQuantizationType[name]][0]
        if k % block == 0:
            weights[name] = kernels.GGUFMatrix.from_bytes(
                random_gguf_bytes(name, n, k, rng), GGMLQuantizationType[name], n, k)
    for m in rows:
        x = torch.randn(m, k)
        cells = [
            time_call(lambda x=x: F.linear(x, dense), clock, budget),
            time_call(lambda x=x: torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [],
                                                                     ""), clock, budget),
        ]
        for name in types:
            w = weights.get(name)
            cells.append(None if w is None else
                         time_call(lambda x=x, w=w: kernels.matmul(x, w), clock, budget))
        yield m, cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.kernel_timing",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shapes", default=",".join(f"{n}x{k}" for n, k in SHAPES),
                        help="N x K weight shapes, comma-separated")
    parser.add_argument("--types", default=",".join(TYPES))
    parser.add_argument("--rows", default=",".join(map(str, ROWS)))
    parser.add_argument("--budget", type=float, default=0.3, help="seconds per measurement")
    parser.add_argument("--clock", choices=("wall", "thread"), default="wall")
    args = parser.parse_args(argv)
    if args.clock == "thread" and args.threads != 1:
        parser.error("--clock thread measures one thread: use it with --threads 1")

    from ..model import kernels

    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.thread_time
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    types = args.types.split(",")
    rows = [int(m) for m in args.rows.split(",")]
    rng = np.random.default_rng(0)
    kernels.build.load()

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"# matmul ms per call, {args.threads} thread(s), {args.clock} clock; "
          f"torch {torch.__version__}, {platform.machine()}, "
          f"load average {'/'.join(f'{v:.1f}' for v in load) if load else 'n/a'}")
    columns = ["F.linear f32", "oneDNN packed f32", *types]
    print()
    print("| N x K | M | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for n, k in shapes:
        for m, cells in time_shape(n, k, rows, types, clock, args.budget, rng):
            text = " | ".join("n/a" if c is None else f"{c:.3g}" for c in cells)
            print(f"| {n} x {k} | {m} | {text} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
