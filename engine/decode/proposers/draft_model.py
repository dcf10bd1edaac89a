"""A small draft model proposes K tokens; the target verifies them in one pass.

Both models keep their own KV cache through their own `ModelRunner`. The draft runner keeps
the longest prefix it shares with the true sequence, so on a rejection its cache is cropped
to what the target accepted, and after a fully accepted block the last draft token (which
the draft produced but never fed) is fed together with the target's own token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.contract import TokenizerMismatchError

from .base import Proposer


def check_same_tokenizer(draft_tokenizer: Any, target_tokenizer: Any) -> None:
    if draft_tokenizer.get_vocab() != target_tokenizer.get_vocab():
        raise TokenizerMismatchError(
            "the draft model's tokenizer differs from the target's: pick a draft from the same "
            "family (e.g. qwen2.5-coder-0.5b-instruct for qwen2.5-coder-1.5b-instruct)")


class AdaptiveK:
    """transformers' heuristic schedule: +2 after a fully accepted block, -1 otherwise."""

    def __init__(self, start: int = 5, low: int = 1, high: int = 32) -> None:
        self.value, self.low, self.high = start, low, high

    def update(self, proposed: int, accepted: int) -> None:
        if proposed == 0:
            return
        if accepted == proposed:
            self.value = min(self.high, self.value + 2)
        else:
            self.value = max(self.low, self.value - 1)


class DraftModelProposer(Proposer):
    def __init__(self, draft_model: Any, prompt: Sequence[int], k: int | AdaptiveK = 5,
                 stop_ids: frozenset[int] = frozenset()) -> None:
        # Imported here: the method names and the factory are read (to refuse a bad method)
        # before torch, which the runner needs, is worth loading.
        from engine.decode.runner import ModelRunner

        self.runner = ModelRunner(draft_model)
        self.prompt = list(prompt)
        self.k = k
        self.stop_ids = stop_ids

    @property
    def forward_passes(self) -> int:
        return self.runner.forward_passes

    def propose(self, output: Sequence[int], max_tokens: int) -> list[int]:
        # The target's first pass is the prefill alone, so target passes are exactly
        # 1 + verification steps.
        if not output:
            return []
        k = self.k.value if isinstance(self.k, AdaptiveK) else self.k
        sequence = self.prompt + list(output)
        draft: list[int] = []
        for _ in range(min(k, max_tokens)):
            (token,) = self.runner.predict(sequence + draft)
            draft.append(token)
            if token in self.stop_ids:
                break
        return draft

    def feedback(self, proposed: int, accepted: int) -> None:
        if isinstance(self.k, AdaptiveK):
            self.k.update(proposed, accepted)
