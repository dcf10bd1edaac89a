"""What a decoding run reports: progress after each pass, and the statistics at the end.

`DecodeStats` is the one statistics type: the decoding loop fills it, every result holds it
(a rewrite, a chat completion, a rewrite by a remote endpoint), and only the front ends turn
it into their own shapes (the CLI's JSON, the language server's camelCase, OpenAI's usage).
Imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Progress:
    """Reported after each forward pass."""

    output_tokens: int
    forward_passes: int
    elapsed: float
    covered: float | None = None  # share of the original region reached, when drafting from it
    # The output token ids so far, for callers that show the text as it grows. The loop's own
    # list, not a copy (copying every pass of a long output would cost): read it, or copy it,
    # during the call only. Left out of repr and equality.
    tokens: Sequence[int] = field(default=(), repr=False, compare=False)


@dataclass
class DecodeStats:
    prompt_tokens: int = 0
    output_tokens: int = 0
    forward_passes: int = 0
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    draft_forward_passes: int = 0  # a draft model's own passes
    verification_steps: int = 0  # passes that checked a non-empty draft
    wall_seconds: float = 0.0
    # Seconds of each pass that fed at most two tokens: the cost of a plain greedy step.
    single_pass_seconds: list[float] = field(default_factory=list, repr=False)

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def estimated_greedy_seconds(self) -> float | None:
        """Greedy's time for the same output: the prefill plus one one-token step per token.

        Only from the one-token passes this run timed anyway (None when there were none, as
        for an unchanged region confirmed in one pass): the estimate never costs a pass.
        """
        steps = sorted(self.single_pass_seconds)
        if not steps:
            return None
        step = steps[len(steps) // 2]
        return step * max(self.output_tokens, 1) + step * max(1, self.prompt_tokens // 64)

    @property
    def estimated_speedup(self) -> float | None:
        estimate = self.estimated_greedy_seconds
        return estimate / self.wall_seconds if estimate and self.wall_seconds > 0 else None

    def to_json(self) -> dict[str, Any]:
        """The counts and the derived figures, for JSON output (snake_case)."""
        return {
            "forward_passes": self.forward_passes,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "drafted_tokens": self.drafted_tokens,
            "accepted_tokens": self.accepted_tokens,
            "draft_forward_passes": self.draft_forward_passes,
            "verification_steps": self.verification_steps,
            "wall_seconds": self.wall_seconds,
            "tokens_per_second": self.tokens_per_second,
            "estimated_greedy_seconds": self.estimated_greedy_seconds,
            "estimated_speedup": self.estimated_speedup,
        }
