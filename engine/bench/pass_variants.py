"""What one forward pass costs under different ways of running the same model.

`python -m engine.bench.pass_variants --model M --dtype D`: for each variant, the time of a
pass feeding n tokens after a cached context (the measurement `specedit passcost` makes),
through the runner the decoder uses, plus the one-off cost of getting the variant ready
(loading, compiling). Variants:

- `sdpa`: transformers' default attention (torch's scaled_dot_product_attention), eager
  PyTorch, transformers' own Linear layers.
- `packed-sdpa`: `sdpa` with every Linear's weight packed once for oneDNN (packed_linear.py).
- `packed`: `packed-sdpa` with row-wise attention (row_attention.py): what the engine runs
  on the CPU, each query row computed as a one-token pass computes it.
- `eager-attention`: transformers' own matmul-softmax attention.
- `compiled`: the `sdpa` model with its forward wrapped in `torch.compile(dynamic=True)`
  (inductor; on a CPU it generates C++ kernels). Draft lengths vary from pass to pass, so
  shapes must be dynamic; the first passes of each new shape class pay for compiling.
- `static`: `packed` with a preallocated transformers StaticCache (fixed shapes, written in
  place; a rejected draft only moves its length back) instead of the growing DynamicCache.
- `compiled-static`: `compiled` on a StaticCache, the recipe transformers documents for
  compiled generation.
- `compiled-static-frozen`: `compiled-static` with inductor's freezing, which folds the
  weights in as constants and packs them for oneDNN itself.
- `compiled-frozen`: `compiled` with freezing, on the growing DynamicCache the engine uses.

The packed model does not compile: inductor cannot lower oneDNN's opaque packed weight
(freezing is inductor's own way to the same packing).

Threads are fixed per run (`--threads`); run once per count to compare. `--last-logits`
computes the logits of the last position only, as a prefill does (vLLM's table in
vllm_passcost.py is made of prefills), where a verifying pass needs all n.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from engine.contract import default_model

VARIANTS = ("sdpa", "packed-sdpa", "packed", "eager-attention", "compiled", "static",
            "compiled-static", "compiled-static-frozen", "compiled-frozen")
PACKED = ("packed-sdpa", "packed", "static")
ROW_ATTENTION = ("packed", "static")  # the engine's own attention; the rest run torch's SDPA


class LastLogitsOnly:
    """A model whose passes compute the logits of their last position only."""

    def __init__(self, model: Any) -> None:
        self.model, self.config, self.device = model, model.config, model.device
        self.forward = model.forward  # for the runner, which reads its signature

    def __call__(self, **kwargs: Any) -> Any:
        return self.model(**{**kwargs, "logits_to_keep": 1})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.pass_variants",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=default_model())
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--sizes", default="1,8,32,128")
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--last-logits", action="store_true",
                        help="logits for the last position only, as in a prefill")
    args = parser.parse_args(argv)

    import torch
    import torch._dynamo
    import torch._inductor.config
    from transformers import StaticCache

    from engine.model.loading import load_model
    from engine.model.packed_linear import ENV_SWITCH
    from engine.model.pass_cost import measure_pass_costs

    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{args.model}, {args.dtype}, {torch.get_num_threads()} threads, "
          f"{args.context} cached tokens, median of {args.repeats}\n")
    print("| variant | ready (s) | " + " | ".join(f"ms per pass, n={n}" for n in sizes)
          + " | ms per token, n=" + str(sizes[-1]) + " |")
    print("|---|---|" + "---|" * (len(sizes) + 1))
    for variant in args.variants.split(","):
        started = time.perf_counter()
        if variant not in VARIANTS:
            raise SystemExit(f"unknown variant {variant!r}; use {', '.join(VARIANTS)}")
        os.environ[ENV_SWITCH] = "1" if variant in PACKED else "0"
        torch._inductor.config.freezing = variant.endswith("frozen")
        torch._dynamo.reset()
        loaded = load_model(args.model, "cpu", args.dtype, threads=torch.get_num_threads())
        model = loaded.model
        cache = None
        if "static" in variant:
            cache = StaticCache(config=model.config, max_cache_len=args.context + max(sizes))
        if variant == "eager-attention":
            model.set_attn_implementation("eager")
        elif variant not in ROW_ATTENTION:
            model.set_attn_implementation("sdpa")
        elif "compiled" in variant:
            model.forward = torch.compile(model.forward, dynamic=True)
            # Compiling happens on the first passes: pay it here, for every size once.
            measure_pass_costs(model, context=args.context, sizes=sizes, repeats=1,
                               cache=cache)
        ready = time.perf_counter() - started
        if args.last_logits:
            model = LastLogitsOnly(model)
        costs = measure_pass_costs(model, context=args.context, sizes=sizes,
                                   repeats=args.repeats, cache=cache)
        cells = " | ".join(f"{c.seconds * 1e3:.1f}" for c in costs)
        print(f"| {variant} | {ready:.1f} | {cells} | "
              f"{costs[-1].seconds_per_token * 1e3:.2f} |", flush=True)
        del loaded, model, cache
    return 0


if __name__ == "__main__":
    sys.exit(main())
