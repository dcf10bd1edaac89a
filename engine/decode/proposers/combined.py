"""Speculative edits combined with a stand-in proposer where the original falls short.

`LookupFallbackProposer` is what `speculative` runs (n-gram lookup where the original has no
match); `HybridProposer` is `speculative` with a draft model.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import Proposer
from .draft_model import DraftModelProposer
from .original import OriginalCodeProposer
from .prompt_lookup import PromptLookupProposer


class OriginalFirstProposer(Proposer):
    """The original code drafts first; a stand-in drafts where the original falls short.

    Both combinations of speculative edits work this way (n-gram lookup, a draft model); they
    differ only in when the stand-in takes over, `_original_keeps`.
    Each verdict goes back to the proposer that drafted, so each keeps its own acceptance.
    """

    def __init__(self, original: OriginalCodeProposer, stand_in: Proposer) -> None:
        self.original = original
        self.stand_in = stand_in
        self._last: Proposer | None = None
        self.stand_in_proposals = 0  # how often the stand-in drafted (for tests, stats)

    @property
    def covered(self) -> float | None:
        return self.original.covered

    @property
    def forward_passes(self) -> int:
        return self.stand_in.forward_passes

    def _original_keeps(self, proposal: list[int], output: Sequence[int]) -> bool:
        """Whether the original's `proposal` after `output` is the one to verify."""
        raise NotImplementedError

    def propose(self, output: Sequence[int], max_tokens: int) -> list[int]:
        proposal = self.original.propose(output, max_tokens)
        if self._original_keeps(proposal, output):
            self._last = self.original
            return proposal
        self._last = self.stand_in
        self.stand_in_proposals += 1
        return self.stand_in.propose(output, max_tokens)

    def feedback(self, proposed: int, accepted: int) -> None:
        if self._last is not None:
            self._last.feedback(proposed, accepted)


class LookupFallbackProposer(OriginalFirstProposer):
    """The original code drafts; where it has nothing to offer, n-gram lookup does.

    Where the output has left the original and no suffix of it occurs there (new code), the
    original proposes nothing and the loop would decode one token per pass. New code often
    repeats itself or the prompt (a second method shaped like the first, a name from the
    instruction), so the prompt and the output so far are searched instead. The original
    takes over again as soon as any suffix of the output matches it. Only passes that would
    otherwise carry no draft get one: letting lookup replace weak matches too saved a few
    more passes but lost time on some problems (results: "N-gram lookup where the original
    has no match").
    """

    def __init__(self, original: OriginalCodeProposer, lookup: PromptLookupProposer) -> None:
        super().__init__(original, lookup)
        self.lookup = lookup

    def _original_keeps(self, proposal: list[int], output: Sequence[int]) -> bool:
        # The first pass is the original's whatever it proposes (its policy may choose no
        # draft): no token of the answer exists yet to look up.
        return bool(proposal) or not output


class HybridProposer(OriginalFirstProposer):
    """The original code drafts where the output follows it; a draft model where it does not.

    Speculative edits decode new code one token per pass: the original has nothing to offer
    there. A small model of the same family can: where the original proposer has no trusted
    match (no match at all, or a weak one of a few tokens that may agree by chance), the
    draft model proposes; as soon as the output re-synchronises with the original (a strong
    match), the original takes over again.
    """

    def __init__(self, original: OriginalCodeProposer, drafter: DraftModelProposer) -> None:
        super().__init__(original, drafter)
        self.drafter = drafter

    def _original_keeps(self, proposal: list[int], output: Sequence[int]) -> bool:
        # A weak match may agree with the output by chance: the draft model does better.
        # On the first pass with no draft chosen, the target's prefill is due anyway and the
        # draft model has no token of the answer to start from.
        return self.original.trusted and (bool(proposal) or not output)
