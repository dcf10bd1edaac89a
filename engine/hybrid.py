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
from .proposers import OriginalCodeProposer


class HybridProposer:
    def __init__(self, original: OriginalCodeProposer, drafter: DraftModelProposer) -> None:
        self.original = original
        self.drafter = drafter
        self._last: OriginalCodeProposer | DraftModelProposer | None = None
        self.drafter_proposals = 0  # how often the draft model stood in (for tests, stats)

    @property
    def forward_passes(self) -> int:
        """The draft model's passes (the verifying loop reports them as draft passes)."""
        return self.drafter.forward_passes

    @property
    def covered(self) -> float:
        return self.original.covered

    def propose(self, output: Sequence[int], max_tokens: int) -> list[int]:
        proposal = self.original.propose(output, max_tokens)
        if proposal and self.original.trusted:
            self._last = self.original
            return proposal
        if not output and self.original.trusted:
            # The first pass: the policy chose not to draft. The target's prefill is due
            # anyway, and the draft model has no token of the answer to start from.
            self._last = self.original
            return proposal
        self._last = self.drafter
        self.drafter_proposals += 1
        return self.drafter.propose(output, max_tokens)

    def feedback(self, proposed: int, accepted: int) -> None:
        if self._last is not None:
            self._last.feedback(proposed, accepted)
