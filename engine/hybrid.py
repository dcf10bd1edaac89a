"""The original code drafts where the output follows it; a draft model where it does not.

Speculative edits decode new code one token per pass: the original has nothing to offer
there. A small model of the same family can: where the original proposer has no trusted
match (no match at all, or a weak one of a few tokens that may agree by chance), the draft
model proposes; as soon as the output re-synchronises with the original (a strong match),
the original takes over again. Each verdict goes back to the proposer that drafted.
"""

from __future__ import annotations

from collections.abc import Sequence

from .draft_model import DraftModelProposer
from .proposers import OriginalCodeProposer, OriginalFirstProposer


class HybridProposer(OriginalFirstProposer):
    def __init__(self, original: OriginalCodeProposer, drafter: DraftModelProposer) -> None:
        super().__init__(original, drafter)
        self.drafter = drafter

    @property
    def forward_passes(self) -> int:
        """The draft model's passes (the verifying loop reports them as draft passes)."""
        return self.drafter.forward_passes

    def _original_keeps(self, proposal: list[int], output: Sequence[int]) -> bool:
        # A weak match may agree with the output by chance: the draft model does better.
        # On the first pass with no draft chosen, the target's prefill is due anyway and the
        # draft model has no token of the answer to start from.
        return self.original.trusted and (bool(proposal) or not output)
