"""The interface every proposer implements: guess the next tokens, hear how many were kept.

The verifying loop (decode/loop.py) decides what stays, so a proposer only affects speed,
never the output. Who proposes is chosen by one factory (decode/methods.py).
"""

from __future__ import annotations

from collections.abc import Sequence


class Proposer:
    """Base class of all proposers; by default it proposes nothing (one token per pass)."""

    def propose(self, output: Sequence[int], max_tokens: int) -> list[int]:
        """Guess up to `max_tokens` tokens that follow `output` (the tokens generated so far)."""
        return []

    def feedback(self, proposed: int, accepted: int) -> None:
        """How many of the last proposal's tokens the target model accepted."""

    @property
    def covered(self) -> float | None:
        """Share of the original code the output has reached (None: no original)."""
        return None

    @property
    def forward_passes(self) -> int:
        """Forward passes of a model of the proposer's own (a draft model), for the stats."""
        return 0


class NoProposer(Proposer):
    """Proposes nothing: the verifying loop then decodes one token per pass (greedy)."""
