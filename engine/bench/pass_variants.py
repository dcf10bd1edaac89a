"""What one forward pass costs under different ways of running the same model.

`python -m engine.bench.pass_variants --model M --dtype D`: for each variant, the time of a
pass feeding n tokens after a cached context (the measurement `specedit passcost` makes),
through the runner the decoder uses, plus the one-off cost of getting the variant ready
(loading, compiling). Variants:

- `sdpa`: transformers' default attention (torch's scaled_dot_product_attention), eager
  PyTorch, transformers' own Linear layers.
- `packed`: `sdpa` with every Linear's weight packed once for oneDNN (packed_linear.py):
  what the engine runs on the CPU.
- `eager-attention`: transformers' own matmul-softmax attention.
- `compiled`: the `sdpa` model with its forward wrapped in `torch.compile(dynamic=True)`
  (inductor; on a CPU it generates C++ kernels). Draft lengths vary from pass to pass, so
  shapes must be dynamic; the first passes of each new shape class pay for compiling.

Threads are fixed per run (`--threads`); run once per count to compare.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ..contract import default_model

VARIANTS = ("sdpa", "packed", "eager-attention", "compiled")


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
    args = parser.parse_args(argv)

    import torch

    from ..cost_curve import measure_pass_costs
    from ..loading import load_model
    from ..packed_linear import ENV_SWITCH

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
        os.environ[ENV_SWITCH] = "1" if variant == "packed" else "0"
        loaded = load_model(args.model, "cpu", args.dtype, threads=torch.get_num_threads())
        model = loaded.model
        if variant == "eager-attention":
            model.set_attn_implementation("eager")
        elif variant == "compiled":
            model.forward = torch.compile(model.forward, dynamic=True)
            # Compiling happens on the first passes: pay it here, for every size once.
            measure_pass_costs(model, context=args.context, sizes=sizes, repeats=1)
        elif variant not in ("sdpa", "packed"):
            raise SystemExit(f"unknown variant {variant!r}; use {', '.join(VARIANTS)}")
        ready = time.perf_counter() - started
        costs = measure_pass_costs(model, context=args.context, sizes=sizes,
                                   repeats=args.repeats)
        cells = " | ".join(f"{c.seconds * 1e3:.1f}" for c in costs)
        print(f"| {variant} | {ready:.1f} | {cells} | "
              f"{costs[-1].seconds_per_token * 1e3:.2f} |", flush=True)
        del loaded, model
    return 0


if __name__ == "__main__":
    sys.exit(main())
