"""What a laptop user with a bigger GGUF would wait: the worked example on a 3B or 7B shape.

    python -m engine.bench.laptop [--model qwen2.5-coder-1.5b-instruct] [--shapes 1.5b,3b,7b]
        [--threads 2] [--scratch DIR]

Bigger models are not in the offline catalog, so the estimate has two halves:

1. **Which passes** a rewrite makes: the worked example is rewritten by a real catalog model
   (the default), greedy and speculative, every default, with each pass's size, cached
   tokens and kept logits recorded.
2. **What those passes cost** on a bigger model: each shape's GGUF is written with random
   Q4_K_M blocks (`random_gguf.py`), and the recorded passes are replayed, in order, on the
   native decoder over that file (one warm-up pass first: the weights are in memory, as in a
   server that has loaded its model).

It is an estimate, not a measurement of those models: a 3B or 7B model writes a similar but
not identical rewrite, and speculative sizes its drafts from the cost curve of the model it
runs. The replay times the passes only; the `1.5b` shape, the recording model's own, shows
how far the replay is from the real run's wall time (the loop's own work, sampling).
Prints one CSV line per shape and method.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .random_gguf import QWEN25_CODER, ModelShape, write_random_gguf
from .replay import RecordedPass

if TYPE_CHECKING:
    from engine.model.gguf.decoder import NativeDecoder
    from engine.model.loading import LoadedModel


@dataclass(frozen=True)
class Recording:
    method: str
    passes: tuple[RecordedPass, ...]
    forward_passes: int  # the rewrite's own count, which the recording must equal
    output_tokens: int
    wall_seconds: float
    text: str


class PassRecorder:
    """Stands in for a NativeDecoder's kernel pass and records each call's shape (and its
    seconds by `clock`, when given)."""

    def __init__(self, kernel_pass: Callable[..., torch.Tensor],
                 clock: Callable[[], float] | None = None) -> None:
        self.kernel_pass = kernel_pass
        self.clock = clock
        self.passes: list[RecordedPass] = []

    def __call__(self, ids: torch.Tensor, start: int, *rest: Any) -> torch.Tensor:
        started = self.clock() if self.clock is not None else 0.0
        logits = self.kernel_pass(ids, start, *rest)
        seconds = self.clock() - started if self.clock is not None else 0.0
        self.passes.append(RecordedPass(cached=int(start), tokens=int(ids.numel()),
                                        keep=int(rest[-1]), seconds=seconds))
        return logits

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kernel_pass, name)


def record_passes(loaded: LoadedModel, code: str, instruction: str, language: str,
                  method: str) -> Recording:
    """Rewrite with `loaded` (a native-decoder model) and record each pass it makes. Warm it
    up first (engine.bench.run.warm_up): speculative's first use measures the pass-cost curve,
    whose passes are not the rewrite's."""
    from engine.rewriting.rewrite import rewrite

    decoder = loaded.model
    recorder = PassRecorder(decoder.kernel_pass)
    decoder.kernel_pass = recorder
    try:
        result = rewrite(loaded, code, instruction, language=language, method=method)
    finally:
        decoder.kernel_pass = recorder.kernel_pass
    passes = recorder.passes
    if len(passes) != result.stats.forward_passes:
        raise RuntimeError(f"recorded {len(passes)} passes where the rewrite counted "
                           f"{result.stats.forward_passes}: warm the model up first")
    return Recording(method, tuple(passes), result.stats.forward_passes,
                     result.stats.output_tokens,
                     result.stats.wall_seconds, result.text)


def replay(decoder: NativeDecoder, passes: tuple[RecordedPass, ...], vocab: int,
           seed: int = 0) -> tuple[float, float]:
    """Seconds to run `passes` in order on `decoder`, each on top of its recorded cache: in
    all, and of the first (the prompt's prefill)."""
    generator = torch.Generator().manual_seed(seed)
    cache = decoder.new_cache()
    decoder(torch.randint(vocab, (1, 1), generator=generator), logits_to_keep=1, cache=cache)
    cache.crop(0)  # the warm-up pass brought the weights into memory
    started = time.perf_counter()
    first = 0.0
    for p in passes:
        if cache.length > p.cached:
            cache.crop(p.cached)
        ids = torch.randint(vocab, (1, p.tokens), generator=generator)
        decoder(ids, logits_to_keep=p.keep, cache=cache)
        first = first or time.perf_counter() - started
    return time.perf_counter() - started, first


def replay_on_shape(shape: ModelShape, recordings: list[Recording],
                    scratch: Path) -> dict[str, Any]:
    from engine.model.gguf.decoder import NativeDecoder
    from engine.model.gguf.reader import GGUFFile

    path = write_random_gguf(scratch / f"{shape.name}-random-q4_k_m.gguf", shape)
    try:
        decoder = NativeDecoder(GGUFFile(path))
        seconds = {r.method: replay(decoder, r.passes, shape.vocab) for r in recordings}
        size = path.stat().st_size
        del decoder
    finally:
        path.unlink()
    return {"gguf_mib": size // 2**20, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.laptop",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="the recording model (default: the "
                        "engine's default model)")
    parser.add_argument("--shapes", default="1.5b,3b,7b",
                        help=f"comma-separated, of {', '.join(QWEN25_CODER)}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default="greedy,speculative")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="where the random GGUFs are written (up to 4.5 GB; each is "
                        "removed after its replay)")
    args = parser.parse_args(argv)
    shapes = [QWEN25_CODER[name.strip()] for name in args.shapes.split(",")]

    from engine import default_model, load_model
    from engine.bench.run import warm_up
    from engine.bench.tasks import find_data_dir, load_worked_example

    torch.set_num_threads(args.threads)
    model = args.model or default_model()
    loaded = load_model(model, threads=args.threads)
    if loaded.dtype != "gguf":
        parser.error(f"{model} loaded as {loaded.dtype}: the replay needs the native decoder")
    task = load_worked_example(find_data_dir())
    warm_up(loaded, args.methods.split(","), None)
    recordings = [record_passes(loaded, task.code, task.instruction, task.language, method)
                  for method in args.methods.split(",")]
    if len({r.text for r in recordings}) != 1:
        print("# warning: the methods' rewrites differ")
    print(f"# recorded with {model} ({loaded.dtype}), {args.threads} threads, "
          f"worked example right: {task.check(recordings[0].text)}")
    print("shape,gguf_mib,method,passes,prompt_tokens,output_tokens,recorded_wall_s,"
          "replay_s,replay_prefill_s")
    for r in recordings:
        print(f"{model},,{r.method},{len(r.passes)},{r.passes[0].tokens},{r.output_tokens},"
              f"{r.wall_seconds:.2f},,")
    del loaded
    scratch = args.scratch or Path(os.environ.get("TMPDIR", tempfile.gettempdir()))
    for shape in shapes:
        result = replay_on_shape(shape, recordings, scratch)
        for r in recordings:
            total, prefill = result["seconds"][r.method]
            print(f"{shape.name},{result['gguf_mib']},{r.method},{len(r.passes)},"
                  f"{r.passes[0].tokens},{r.output_tokens},,{total:.2f},{prefill:.2f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
