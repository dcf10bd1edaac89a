"""One model plus its KV cache, fed token ids and asked for greedy predictions.

The runner remembers which token ids its cache holds. Before each pass it keeps only the
longest prefix shared with the sequence it is given, so rejected draft tokens are dropped
without the caller doing cache bookkeeping (the same mechanism serves the target model and a
draft model).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
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


def cache_argument(model: Any) -> str:
    """The name under which the model's forward takes (and returns) its KV cache.

    transformers renamed `past_key_values` to `cache` in 5.2x and removes the old name in
    5.40; models written to the older convention (and older releases) take the old one.
    """
    forward = getattr(model, "forward", model)
    try:
        parameters = inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a clock read afterwards measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ModelRunner:
    """Greedy predictions from a causal LM with a reusable KV cache."""

    def __init__(self, model: Any, cache: Any = None) -> None:
        """`cache`: a preallocated cache to reuse (a transformers StaticCache, whose fixed
        shapes a compiled forward needs); None lets the model grow a DynamicCache."""
        self.model = model
        self.cache: Any = cache
        self.preallocated = cache is not None
        self.cache_argument = cache_argument(model)
        # Called before every pass (the thread governor of an `auto` rewrite), or None.
        self.before_pass: Callable[[], object] | None = None
        self.cached: list[int] = []
        self.forward_passes = 0
        self.tokens_fed = 0

    @property
    def device(self) -> torch.device:
        return getattr(self.model, "device", torch.device("cpu"))

    def reset(self) -> None:
        if self.preallocated:
            crop_cache(self.cache, 0)  # keep the buffers: their addresses are compiled in
        else:
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
        if self.before_pass is not None:
            self.before_pass()
        # At least the last token of `sequence` is fed: its logits give the first prediction.
        keep = 0
        if self.cache is not None:
            keep = min(_common_prefix(self.cached, sequence), len(sequence) - 1)
            crop_cache(self.cache, keep)
        new = list(sequence[keep:]) + list(draft)
        input_ids = torch.tensor([new], dtype=torch.long, device=self.device)
        out = self.model(
            input_ids=input_ids,
            use_cache=True,
            logits_to_keep=len(draft) + 1,
            **{self.cache_argument: self.cache},
        )
        self.cache = getattr(out, self.cache_argument)
        self.cached = list(sequence[:keep]) + new
        self.forward_passes += 1
        self.tokens_fed += len(new)
        return out.logits[0, -(len(draft) + 1) :, :]
