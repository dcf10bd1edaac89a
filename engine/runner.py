"""One model plus its KV cache, fed token ids and asked for greedy predictions.

The runner remembers which token ids its cache holds. Before each pass it keeps only the
longest prefix shared with the sequence it is given, so rejected draft tokens are dropped
without the caller doing cache bookkeeping (the same mechanism serves the target model and a
draft model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def crop_cache(cache: Any, keep: int) -> None:
    """Crop a transformers cache to its first `keep` positions.

    transformers 5 accepts only a negative count of tokens to remove; transformers 4 reads a
    negative argument the same way, so one call serves both.
    """
    remove = cache.get_seq_length() - keep
    if remove > 0:
        cache.crop(-remove)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a clock read afterwards measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ModelRunner:
    """Greedy predictions from a causal LM with a reusable KV cache."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.cache: Any = None
        self.cached: list[int] = []
        self.forward_passes = 0
        self.tokens_fed = 0

    @property
    def device(self) -> torch.device:
        return getattr(self.model, "device", torch.device("cpu"))

    def reset(self) -> None:
        self.cache = None
        self.cached = []

    def predict(self, sequence: Sequence[int], draft: Sequence[int] = ()) -> list[int]:
        """Return the argmax after `sequence` and after each token of `draft`.

        The result has len(draft) + 1 ids: result[i] is the model's choice following
        sequence + draft[:i]. One forward pass, whatever the lengths.
        """
        return self.logits(sequence, draft).argmax(dim=-1).tolist()

    @torch.inference_mode()
    def logits(self, sequence: Sequence[int], draft: Sequence[int] = ()) -> torch.Tensor:
        """The next-token logits after `sequence` and after each token of `draft`.

        A (len(draft) + 1, vocab) tensor, row i following sequence + draft[:i]; one forward
        pass. Sampling needs the whole distribution where greedy needs only its argmax.
        """
        if not sequence:
            raise ValueError("predict needs at least one token of context")
        # At least the last token of `sequence` is fed: its logits give the first prediction.
        keep = 0
        if self.cache is not None:
            keep = min(_common_prefix(self.cached, sequence), len(sequence) - 1)
            crop_cache(self.cache, keep)
        new = list(sequence[keep:]) + list(draft)
        input_ids = torch.tensor([new], dtype=torch.long, device=self.device)
        out = self.model(
            input_ids=input_ids,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=len(draft) + 1,
        )
        self.cache = out.past_key_values
        self.cached = list(sequence[:keep]) + new
        self.forward_passes += 1
        self.tokens_fed += len(new)
        return out.logits[0, -(len(draft) + 1) :, :]
