"""Which operations of transformers' forward pass give a row different bits when it shares
its pass with other rows, on this CPU.

    python -m engine.bench.invariance [--sizes 1,2,3,7,16,64] [--threads 1,2] [--context 40]

Speculative output equals greedy output only where a position's logits do not depend on how
many tokens share its pass. For each operation at the 0.5B model's shapes (transformers'
linear layer, the same layer packed for oneDNN as the engine packs it, scaled dot-product
attention with a cached prefix, RMS norm) and for a small random Qwen2 model whole, in
float32 and bfloat16, this computes every row of a pass of n rows and the same row alone (as
greedy's one-token pass does) and reports whether all bits agree, the first pass size where
they do not, and the largest difference. The native decoder's kernels are held to bit-for-bit
invariance by the tests (tests/engine/model/test_kernels.py, test_native_decoder.py); this
reports on the transformers path, which runs folders, hub models and every GPU.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN, FFN, HEADS, KV_HEADS, HEAD_DIM = 896, 4864, 14, 2, 64  # Qwen2.5-Coder-0.5B


@dataclass
class Verdict:
    operation: str
    dtype: str
    threads: int
    invariant: bool
    first_size: int | None  # the smallest pass size whose rows differ from one-row passes
    max_abs_diff: float


def rows_alone_vs_together(batched: Callable[[int], torch.Tensor],
                           alone: Callable[[int, int], torch.Tensor],
                           sizes: list[int]) -> tuple[int | None, float]:
    """batched(n) -> [n, ...] outputs of a pass of n rows; alone(n, i) -> row i computed in
    a pass of its own. Returns (first differing size, largest difference)."""
    first, worst = None, 0.0
    for n in sizes:
        together = batched(n)
        for i in range(n):
            one = alone(n, i)
            if not torch.equal(together[i], one):
                worst = max(worst, (together[i].float() - one.float()).abs().max().item())
                first = n if first is None else first
    return first, worst


def linear_case(packed: bool, dtype: torch.dtype,
                sizes: list[int]) -> tuple[int | None, float] | None:
    from engine.model.packed_linear import pack_linears, packing_applies

    if packed and not packing_applies(torch.device("cpu"), dtype):
        return None  # the engine does not pack this dtype on this CPU
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(HIDDEN, FFN, bias=False)).to(dtype).eval()
    if packed:
        pack_linears(model)
    x = torch.randn(max(sizes), HIDDEN).to(dtype)
    with torch.inference_mode():
        return rows_alone_vs_together(lambda n: model(x[:n]),
                                      lambda n, i: model(x[i:i + 1])[0], sizes)


def attention_case(dtype: torch.dtype, sizes: list[int], context: int) -> tuple[int | None, float]:
    torch.manual_seed(1)
    total = context + max(sizes)
    q = torch.randn(1, HEADS, max(sizes), HEAD_DIM).to(dtype)
    k = torch.randn(1, KV_HEADS, total, HEAD_DIM).to(dtype)
    v = torch.randn(1, KV_HEADS, total, HEAD_DIM).to(dtype)

    def attend(rows: torch.Tensor, first: int) -> torch.Tensor:
        # Queries at positions context+first.., each seeing the keys up to its own position.
        n = rows.shape[2]
        keys = context + first + n
        position = torch.arange(context + first, keys).unsqueeze(1)
        mask = torch.arange(keys).unsqueeze(0) <= position
        return F.scaled_dot_product_attention(rows, k[:, :, :keys], v[:, :, :keys],
                                              attn_mask=mask, enable_gqa=True)

    with torch.inference_mode():
        return rows_alone_vs_together(
            lambda n: attend(q[:, :, :n], 0)[0].transpose(0, 1),
            lambda n, i: attend(q[:, :, i:i + 1], i)[0].transpose(0, 1)[0], sizes)


def norm_case(dtype: torch.dtype, sizes: list[int]) -> tuple[int | None, float]:
    torch.manual_seed(2)
    weight = torch.rand(HIDDEN).to(dtype) + 0.5
    x = torch.randn(max(sizes), HIDDEN).to(dtype)

    def norm(rows: torch.Tensor) -> torch.Tensor:  # as transformers' Qwen2RMSNorm computes it
        h = rows.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
        return weight * h.to(dtype)

    with torch.inference_mode():
        return rows_alone_vs_together(lambda n: norm(x[:n]), lambda n, i: norm(x[i:i + 1])[0],
                                      sizes)


def model_case(dtype: torch.dtype, sizes: list[int], context: int,
               rows: bool) -> tuple[int | None, float]:
    from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM

    from engine.decode.runner import cache_argument
    from engine.model.packed_linear import pack_linears, packing_applies
    from engine.model.row_attention import use_row_attention

    config = Qwen2Config(hidden_size=256, intermediate_size=704, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=1000,
                         max_position_embeddings=4096)
    torch.manual_seed(3)
    model = Qwen2ForCausalLM(config).to(dtype).eval()
    if packing_applies(torch.device("cpu"), dtype):
        pack_linears(model)  # as the engine loads it
    if rows:
        assert use_row_attention(model)
    ids = torch.randint(0, 1000, (1, context + max(sizes)))

    name = cache_argument(model)

    def after_prefix(chunks: list[tuple[int, int]]) -> torch.Tensor:
        cache = DynamicCache()
        model(ids[:, :context], use_cache=True, **{name: cache})
        out = [model(ids[:, context + a:context + b], use_cache=True, **{name: cache}).logits[0]
               for a, b in chunks]
        return torch.cat(out)

    with torch.inference_mode():
        one_by_one = after_prefix([(i, i + 1) for i in range(max(sizes))])
        return rows_alone_vs_together(lambda n: after_prefix([(0, n)]),
                                      lambda n, i: one_by_one[i], sizes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.invariance",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,2,3,7,16,64")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--context", type=int, default=40, help="cached tokens before the pass")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"pass sizes {sizes}, {args.context} cached tokens")
    print("| operation | dtype | threads | invariant | first pass size that differs | "
          "largest difference |")
    print("|---|---|---|---|---|---|")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for dtype in (torch.float32, torch.bfloat16):
            cases = {
                "linear (transformers)": lambda d=dtype: linear_case(False, d, sizes),
                "linear (packed, oneDNN)": lambda d=dtype: linear_case(True, d, sizes),
                "attention (SDPA)": lambda d=dtype: attention_case(d, sizes, args.context),
                "RMS norm": lambda d=dtype: norm_case(d, sizes),
                "whole model (random Qwen2), SDPA": lambda d=dtype: model_case(
                    d, sizes, args.context, rows=False),
                "whole model (random Qwen2), as the engine loads it (row-wise attention)":
                    lambda d=dtype: model_case(d, sizes, args.context, rows=True),
            }
            for name, case in cases.items():
                found = case()
                if found is None:
                    print(f"| {name} | {str(dtype).removeprefix('torch.')} | {threads} | "
                          "not used on this CPU | | |")
                    continue
                first, worst = found
                verdict = Verdict(name, str(dtype).removeprefix("torch."), threads,
                                  first is None, first, worst)
                print(f"| {verdict.operation} | {verdict.dtype} | {verdict.threads} | "
                      f"{'yes' if verdict.invariant else '**no**'} | "
                      f"{verdict.first_size or ''} | {verdict.max_abs_diff:.3g} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
