"""Speculative edits' own proposer: the code being rewritten is the draft.

After each edit the proposer finds its place in the original again by looking the last output
tokens up in it, and drafts from there.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from engine.decode.draft_length import DraftLengthPolicy

from .base import Proposer


@dataclass
class OriginalDraftSettings:
    """How the original code is turned into drafts.

    first_draft: tokens proposed in the first pass (None: the whole original, so an
        unchanged region is confirmed in one pass).
    max_draft: cap on any later draft (None: the whole remainder).
    weak_draft: draft length after a weak re-synchronisation (a short n-gram match away
        from where we left the original); it doubles after each full acceptance.
    strong_match: a match of at least this many tokens, or any match that resumes exactly
        where the original was left, is trusted with a long draft.
    max_match: longest suffix of the output looked up in the original.
    """

    first_draft: int | None = None
    max_draft: int | None = None
    weak_draft: int = 8
    strong_match: int = 4
    max_match: int = 12

    @classmethod
    def capped(cls, tokens: int) -> OriginalDraftSettings:
        """Every draft, the first included, at most `tokens` long."""
        return cls(first_draft=tokens, max_draft=tokens)


class OriginalCodeProposer(Proposer):
    """Drafts from the original code and re-synchronises with it after each edit.

    `pointer` is the index in the original of the next token the output is expected to
    reproduce. After a divergence, the last few output tokens are looked up in the original:
    the longest suffix that occurs with its continuation at or after the pointer wins, the
    nearest such occurrence first, so a later copy of a repeated line is never skipped in
    favour of an earlier one. Only when nothing fits ahead is an earlier copy used.

    With a `policy` (draft_length.py), every draft is cut to the length the pass-cost curve
    and the acceptance seen so far make worth verifying, trusted drafts (the first, and each
    after a strong match) and weak ones each judged by their own acceptance.
    """

    def __init__(self, original: Sequence[int], settings: OriginalDraftSettings | None = None,
                 policy: DraftLengthPolicy | None = None) -> None:
        self.original = list(original)
        self.settings = settings or OriginalDraftSettings()
        self.policy = policy
        self.pointer = 0
        self._proposal_start = 0
        self._weak_len = self.settings.weak_draft
        self._first = True
        self._strong = True
        self._resumes = True  # whether the last proposal continued from the pointer
        # n-gram -> sorted continuation indices (index just past the n-gram's last token).
        self._index: dict[tuple[int, ...], list[int]] = {}
        for n in range(1, self.settings.max_match + 1):
            for end in range(n, len(self.original) + 1):
                self._index.setdefault(tuple(self.original[end - n : end]), []).append(end)

    def _policy(self) -> DraftLengthPolicy:
        assert self.policy is not None
        return self.policy if self._strong else self.policy.weak

    @property
    def trusted(self) -> bool:
        """Whether the last proposal came from a trusted match (the first draft is)."""
        return self._strong

    @property
    def covered(self) -> float:
        """Share of the original the output has reached (for progress reports)."""
        return self.pointer / len(self.original) if self.original else 1.0

    def _locate(self, output: Sequence[int]) -> tuple[int, int] | None:
        """(continuation index, match length) for the best match of the output's suffix."""
        longest = min(self.settings.max_match, len(output))
        for n in range(longest, 0, -1):
            hits = self._index.get(tuple(output[len(output) - n :]))
            if not hits:
                continue
            i = bisect.bisect_left(hits, self.pointer)
            if i < len(hits):
                return hits[i], n
        # Nothing ahead: the rewrite may repeat earlier code; resume after the latest copy.
        for n in range(longest, 0, -1):
            hits = self._index.get(tuple(output[len(output) - n :]))
            if hits:
                return hits[-1], n
        return None

    def propose(self, output: Sequence[int], max_tokens: int) -> list[int]:
        s = self.settings
        first = self._first or not output
        if first:
            start, length = self.pointer, s.first_draft
            self._first = False
            self._strong = self._resumes = True
        else:
            found = self._locate(output)
            if found is None:
                return []
            start, n = found
            # Trusted: a long match, or one that resumes right where the original was left
            # (the matched n-gram touches the pointer), as after an inserted line.
            self._resumes = start - n <= self.pointer <= start
            strong = n >= s.strong_match or self._resumes
            self._strong = strong
            length = s.max_draft if strong else self._weak_len
        if length is None:
            length = len(self.original) - start
        length = min(length, max_tokens, len(self.original) - start)
        if self.policy is not None:
            length = self._policy().choose(length, first=first)
        if length <= 0:
            return []
        self._proposal_start = start
        return self.original[start : start + length]

    def feedback(self, proposed: int, accepted: int) -> None:
        if proposed == 0:
            return
        if self.policy is not None:
            self._policy().record(proposed, accepted)
        # Accepted tokens confirm where the output is in the original, unless only a token
        # or two agreed by chance away from the pointer: a long n-gram can recur further on
        # (a repeated line), and moving the pointer past the true place would hide it from
        # every later lookup. On a rejection the model's own token replaced
        # original[pointer], which may be an insertion, so the pointer stays there.
        if accepted and (self._resumes or accepted >= self.settings.strong_match):
            self.pointer = self._proposal_start + accepted
        if accepted == proposed:
            self._weak_len = min(self._weak_len * 2, max(len(self.original), 1))
        else:
            self._weak_len = max(1, self._weak_len // 2)
