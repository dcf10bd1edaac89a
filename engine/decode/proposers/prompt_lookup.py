"""Prompt lookup decoding: n-gram lookup in the prompt and the output so far."""

from __future__ import annotations

from collections.abc import Sequence

from engine.decode.draft_length import DraftLengthPolicy

from .base import Proposer


class PromptLookupProposer(Proposer):
    """N-gram lookup over the prompt and the output so far (prompt lookup decoding).

    Without a `policy` a draft is at most `num_tokens` long; with one, the continuation found
    is cut to the length the pass-cost curve and this proposer's own acceptance make worth
    verifying (a continuation can then run to the end of what was looked up)."""

    def __init__(self, prompt: Sequence[int], ngram_max: int = 3, ngram_min: int = 1,
                 num_tokens: int = 10, policy: DraftLengthPolicy | None = None) -> None:
        self.prompt = list(prompt)
        self.ngram_max = ngram_max
        self.ngram_min = ngram_min
        self.num_tokens = num_tokens
        self.policy = policy

    def propose(self, output: Sequence[int], max_tokens: int) -> list[int]:
        seq = self.prompt + list(output)
        limit = max_tokens if self.policy is not None else min(self.num_tokens, max_tokens)
        for n in range(min(self.ngram_max, len(seq) - 1), self.ngram_min - 1, -1):
            tail = seq[-n:]
            # The most recent earlier occurrence tends to be the most relevant.
            for start in range(len(seq) - n - 1, -1, -1):
                if seq[start : start + n] == tail:
                    follow = seq[start + n : start + n + limit]
                    if follow:
                        if self.policy is not None:
                            follow = follow[: self.policy.choose(len(follow))]
                        return follow
        return []

    def feedback(self, proposed: int, accepted: int) -> None:
        if self.policy is not None:
            self.policy.record(proposed, accepted)
