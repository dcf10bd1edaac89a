"""Attention that computes each query row as a one-token pass would: transformers' models on
the CPU, so that a verifying pass gives every position the bits greedy's pass gives it.

`scaled_dot_product_attention` reduces differently with one query row than with many, and
with a longer key tensor whose extra keys are masked (engine/bench/invariance.py shows it on
the CPU, float32 and bfloat16). Here every row is its own call, with exactly the keys its
position sees (no mask), which is what a pass of one token at that position computes. The
per-row calls cost a verifying pass some time; a one-token pass is one call, as before.
"""

from __future__ import annotations

from typing import Any

import torch

NAME = "specedit_rows"


def _visible_keys(attention_mask: torch.Tensor | None, kv_length: int, q_length: int,
                  row: int) -> int:
    """How many keys (from the first) query row `row` attends to."""
    if attention_mask is None:  # no padding, a cache that holds exactly the tokens so far
        return kv_length - q_length + row + 1
    mask = attention_mask[0, 0, row]
    visible = mask if mask.dtype == torch.bool else mask == 0
    count = int(visible.sum())
    # One batch, no padding: a row sees a prefix of the keys (a static cache's unused tail and
    # the future are masked). Anything else is not what this attention is for.
    if count == 0 or not bool(visible[:count].all()):
        raise ValueError("row-wise attention needs a causal mask over one unpadded sequence")
    return count


def row_attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                          value: torch.Tensor, attention_mask: torch.Tensor | None,
                          **kwargs: Any) -> tuple[torch.Tensor, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if query.shape[0] != 1:
        raise ValueError("row-wise attention runs one sequence at a time")
    q_length, kv_length = query.shape[2], key.shape[2]
    kwargs.pop("is_causal", None)
    rows = []
    for row in range(q_length):
        keys = _visible_keys(attention_mask, kv_length, q_length, row)
        out, _ = sdpa_attention_forward(module, query[:, :, row:row + 1], key[:, :, :keys],
                                        value[:, :, :keys], None, is_causal=False, **kwargs)
        rows.append(out)
    return torch.cat(rows, dim=1), None


def use_row_attention(model: Any) -> bool:
    """Switch a transformers model's attention to row-wise; False where the model cannot
    (an attention it implements itself, or an older transformers)."""
    try:
        from transformers import AttentionInterface
    except ImportError:
        return False
    AttentionInterface.register(NAME, row_attention_forward)
    try:
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    except ImportError:
        return False

    def always_a_mask(*args: Any, **kwargs: Any) -> Any:
        # SDPA's mask, never skipped for its is_causal flag: which keys a row sees is read
        # off the mask (a static cache's unused tail and the future are masked).
        kwargs["allow_is_causal_skip"] = False
        return sdpa_mask(*args, **kwargs)

    AttentionMaskInterface.register(NAME, always_a_mask)
    try:
        model.set_attn_implementation(NAME)
    except (AttributeError, ValueError):
        return False
    return getattr(model.config, "_attn_implementation", None) == NAME


def uses_row_attention(model: Any) -> bool:
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) == NAME
