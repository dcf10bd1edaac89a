"""What a forward pass costs as it verifies more tokens, on this device and dtype.

Speculative edits pay off where a pass over many tokens costs little more than a pass over
one (a GPU, or float32 on a CPU with good matmuls). Where it costs almost as much per token
(bf16 emulated on a CPU without native bf16), every verified token is nearly a greedy step
and every rejected draft token is nearly a wasted one. This measures that ratio through the
runner the decoder uses, so the benchmark's speed-ups can be explained from numbers.
"""

from __future__ import annotations

from engine.decode.draft_length import AcceptancePrior, DraftLengthPolicy, PassCostCurve
from engine.model.pass_cost import PassCost, fit_curve, measure_pass_costs

__all__ = ["PassCost", "draft_lengths_markdown", "fit_curve", "measure_pass_costs",
           "pass_cost_markdown", "unchanged_rewrite_ceiling"]


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


def draft_lengths_markdown(curve: PassCostCurve, remainders: tuple[int, ...] = (50, 200, 1000),
                           rejections: tuple[int, ...] = (0, 1, 3, 10)) -> str:
    """The curve `speculative` sizes its drafts from, and the lengths it would choose.

    Rows: rejections seen so far in the request (no token accepted yet); columns: the first
    draft (prefill pass) and a later one, for drafts that could run `remainders` tokens.
    """
    lines = [f"Curve the engine uses ({curve.source}): t(n) = {curve.fixed_seconds * 1e3:.2f} ms"
             f" + {curve.seconds_per_token * 1e3:.3f} ms x n tokens"
             + (f" (one-token pass: {curve.single_seconds * 1e3:.2f} ms)"
                if curve.single_seconds is not None else "")
             + f"; b/a = {curve.token_ratio:.3f}", "",
             "| rejections so far | acceptance q | "
             + " | ".join(f"first / later draft of {r}" for r in remainders) + " |",
             "|---|---|" + "---|" * len(remainders)]
    for count in rejections:
        policy = DraftLengthPolicy(curve, AcceptancePrior())
        policy.rejections = count
        cells = [f"{policy.choose(r, first=True)} / {policy.choose(r)}" for r in remainders]
        lines.append(f"| {count} | {policy.acceptance:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
