"""Where a pass of the native decoder spends its time, per operation and per weight.

A timing script, not a test: `python -m engine.bench.pass_profile --model
qwen2.5-coder-0.5b-instruct [--context 400] [--tokens 1,16,64] [--prefill 512] [--threads 1]
[--clock thread]`. It loads the
GGUF model, feeds a context of random token ids, then times passes of n tokens on top of it
(the cache is cropped back after each, so every pass sees the same context). Each run of passes
is timed whole (the minimum over repeats: on a shared machine noise only adds time), and once
more composed of one call per kernel (NativeDecoder.composed, the same bits) with every call
wrapped in a timer, which splits a pass into matmul per weight type and shape, attention,
norms, SiLU, embedding, and the rest (Python and torch's elementwise work, which the whole
pass does in C). `--clock thread` (1 thread only) counts the calling thread's CPU time,
stable on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from pathlib import Path

import torch

from engine.model.kernels import ops


class Profiler:
    """Wraps ops' kernel wrappers (as the decoder looks them up: ops.<name>) in timers."""

    NAMES = ("matmul", "attention", "rms_norm", "silu_mul", "get_rows", "quantize_rows")

    def __init__(self, clock) -> None:
        self.clock = clock
        self.totals: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.bytes: dict[str, int] = defaultdict(int)
        self.saved: dict[str, object] = {}

    def __enter__(self) -> Profiler:
        for name in self.NAMES:
            fn = getattr(ops, name, None)
            if fn is None:
                continue
            self.saved[name] = fn
            setattr(ops, name, self._wrap(name, fn))
        return self

    def __exit__(self, *exc) -> None:
        for name, fn in self.saved.items():
            setattr(ops, name, fn)

    def _wrap(self, name, fn):
        clock = self.clock

        def timed(*args, **kwargs):
            key = name
            size = 0
            if name == "matmul":
                w = args[1]
                rows = args[0].rows if isinstance(args[0], ops.QuantizedRows) else (
                    args[0].numel() // w.cols)
                key = f"matmul {w.ggml_type.name} {w.rows}x{w.cols}"
                size = w.data.numel()
                self.totals["(rows)"] = rows
            t0 = clock()
            out = fn(*args, **kwargs)
            self.totals[key] += clock() - t0
            self.calls[key] += 1
            self.bytes[key] += size
            return out

        return timed


def random_ids(n: int, vocab: int, seed: int) -> torch.Tensor:
    return torch.randint(0, vocab, (1, n), generator=torch.Generator().manual_seed(seed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.pass_profile",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct",
                        help="a catalog name (its GGUF in the cache) or a .gguf path")
    parser.add_argument("--context", type=int, default=400)
    parser.add_argument("--tokens", default="1,16,64", help="pass sizes, comma-separated")
    parser.add_argument("--prefill", type=int, default=512, help="also time a prefill of this "
                        "many tokens from an empty cache (0: none)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clock", choices=("wall", "thread"), default="thread")
    parser.add_argument("--no-split", action="store_true", help="time whole passes only")
    args = parser.parse_args(argv)
    if args.clock == "thread" and args.threads != 1:
        parser.error("--clock thread measures one thread: use it with --threads 1")

    from engine.model.gguf.decoder import NativeDecoder
    from engine.model.gguf.reader import GGUFFile

    path = Path(args.model)
    if path.suffix != ".gguf":  # a catalog name: its verified GGUF, pulled if missing
        from engine.model.catalog import ensure_gguf

        path = ensure_gguf(args.model)
    torch.set_num_threads(args.threads)
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    decoder = NativeDecoder(GGUFFile(path), "gguf")
    vocab = decoder.shape.vocab_size
    load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"# {path.name}: {args.threads} thread(s), {args.clock} clock, context "
          f"{args.context}, load average {load}")

    cache = decoder.new_cache()
    decoder(random_ids(args.context, vocab, 1), cache=cache, logits_to_keep=1)
    sizes = [int(s) for s in args.tokens.split(",") if s]

    def one_pass(n: int, run=decoder) -> None:
        run(random_ids(n, vocab, 2), cache=cache)
        cache.crop(args.context)

    def prefill(run=decoder) -> None:
        run(random_ids(args.prefill, vocab, 3), cache=decoder.new_cache(), logits_to_keep=1)

    runs = [(f"{n}-token pass", lambda n=n, **kw: one_pass(n, **kw)) for n in sizes]
    if args.prefill:
        runs.append((f"prefill {args.prefill}", prefill))
    for label, fn in runs:
        fn()  # warm-up (the cache's and the rotary table's growth, first touch of pages)
        best = float("inf")
        repeats = args.repeats if "prefill" not in label else max(1, args.repeats // 2)
        for _ in range(repeats):
            t0 = clock()
            fn()
            best = min(best, clock() - t0)
        print(f"\n## {label}: {best * 1e3:.2f} ms")
        if args.no_split:
            continue
        split: dict[str, float] = {}
        calls: dict[str, int] = {}
        nbytes: dict[str, int] = {}
        whole = float("inf")
        for _ in range(repeats):
            with Profiler(clock) as prof:
                t0 = clock()
                fn(run=decoder.composed)
                spent = clock() - t0
            if spent < whole:
                whole = spent
                split, calls, nbytes = dict(prof.totals), dict(prof.calls), dict(prof.bytes)
        split.pop("(rows)", None)
        kernels = sum(split.values())
        print(f"(the same pass composed of one call per kernel, each timed: {whole * 1e3:.2f} ms; "
              f"outside the kernels "
              f"{(whole - kernels) * 1e3:.2f} ms)")
        print("| op | calls | ms | % | GB/s of weights |")
        print("|---|---|---|---|---|")
        for key, spent in sorted(split.items(), key=lambda kv: -kv[1]):
            gbs = f"{nbytes[key] / spent / 1e9:.1f}" if nbytes.get(key) and spent else ""
            print(f"| {key} | {calls[key]} | {spent * 1e3:.2f} | {100 * spent / whole:.1f} | "
                  f"{gbs} |")
        print(f"| (outside the kernels) | | {(whole - kernels) * 1e3:.2f} | "
              f"{100 * (whole - kernels) / whole:.1f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
