"""What a forward pass costs as it verifies more tokens, on this device and dtype.

Speculative edits pay off where a pass over many tokens costs little more than a pass over
one (a GPU, or float32 on a CPU with good matmuls). Where it costs almost as much per token
(bf16 emulated on a CPU without native bf16), every verified token is nearly a greedy step
and every rejected draft token is nearly a wasted one. This measures that ratio through the
runner the decoder uses, so the benchmark's speed-ups can be explained from numbers.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..runner import ModelRunner, synchronize


@dataclass
class PassCost:
    tokens: int  # tokens fed in the pass, on top of a cached context
    seconds: float  # median wall time of one such pass

    @property
    def seconds_per_token(self) -> float:
        return self.seconds / self.tokens


def measure_pass_costs(model: Any, *, context: int = 512,
                       sizes: Sequence[int] = (1, 8, 32, 128, 512), repeats: int = 3,
                       seed: int = 0) -> list[PassCost]:
    """Median time of a pass feeding n tokens after `context` cached tokens, for each n."""
    vocab = int(model.config.vocab_size)
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(min(100, vocab - 1), vocab, (context + max(sizes),),
                        generator=generator).tolist()
    runner = ModelRunner(model)
    runner.predict(ids[:context])  # the cached context, untimed
    device = runner.device
    costs = []
    for n in sizes:
        times = []
        for i in range(repeats + 1):  # the first pass of each size is a warm-up
            synchronize(device)
            started = time.perf_counter()
            # The runner crops its cache back to `context`, then feeds 1 + (n - 1) tokens.
            runner.predict(ids[:context + 1], ids[context + 1:context + n])
            synchronize(device)
            if i:
                times.append(time.perf_counter() - started)
        costs.append(PassCost(n, statistics.median(times)))
    return costs


def unchanged_rewrite_ceiling(costs: list[PassCost], prompt_tokens: int,
                              output_tokens: int) -> float:
    """Best speed-up over greedy for a rewrite that keeps all of the original.

    Greedy prefills the prompt and then takes one pass per token; speculative edits verify
    the whole output in the prefill pass. Batched tokens are costed at the largest measured
    pass's per-token rate.
    """
    one = next(c for c in costs if c.tokens == 1).seconds
    batched = max(costs, key=lambda c: c.tokens).seconds_per_token
    greedy = prompt_tokens * batched + output_tokens * one
    speculative = (prompt_tokens + output_tokens) * batched
    return greedy / speculative


def pass_cost_markdown(costs: list[PassCost], title: str, prompt_tokens: int,
                       output_tokens: int) -> str:
    one = next(c for c in costs if c.tokens == 1).seconds
    lines = [title, "", "| tokens per pass | ms per pass | ms per token | per-token cost "
             "/ one-token pass |", "|---|---|---|---|"]
    lines += [f"| {c.tokens} | {c.seconds * 1e3:.1f} | {c.seconds_per_token * 1e3:.2f} | "
              f"{c.seconds_per_token / one:.3f} |" for c in costs]
    ceiling = unchanged_rewrite_ceiling(costs, prompt_tokens, output_tokens)
    lines += ["", f"Ceiling for an unchanged rewrite of {output_tokens} tokens after a "
              f"{prompt_tokens}-token prompt: {ceiling:.2f}x against greedy."]
    return "\n".join(lines) + "\n"
