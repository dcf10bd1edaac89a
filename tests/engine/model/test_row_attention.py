"""transformers' models as load_model runs them on the CPU (packed linear layers where they
apply, row-wise attention): a position's logits and the K/V it writes are the same bits in
passes of 1, 2, 3, 7, 16 and 64 tokens, in float32 and bfloat16. What breaks it without the
row-wise attention is shown by `python -m engine.bench.invariance`."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from engine.decode.runner import cache_argument
from engine.model.packed_linear import pack_linears, packing_applies
from engine.model.row_attention import row_attention_forward, use_row_attention, uses_row_attention
from tests.helpers.tiny_models import tiny_model

PASS_SIZES = (1, 2, 3, 7, 16, 64)
PREFIX = 9


def engine_model(arch: str, dtype: torch.dtype) -> torch.nn.Module:
    model = tiny_model(arch, seed=2, vocab_size=400).to(dtype)
    if packing_applies(torch.device("cpu"), dtype):
        pack_linears(model)
    assert use_row_attention(model) and uses_row_attention(model)
    return model


def passes(model: torch.nn.Module, tokens: torch.Tensor,
           size: int) -> tuple[torch.Tensor, DynamicCache]:
    name = cache_argument(model)
    cache = DynamicCache()
    model(tokens[:, :PREFIX], use_cache=True, **{name: cache})
    rows = []
    with torch.inference_mode():
        for start in range(PREFIX, tokens.shape[1], size):
            out = model(tokens[:, start:start + size], use_cache=True, **{name: cache})
            rows.append(out.logits[0])
    return torch.cat(rows), cache


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def test_a_position_is_the_same_in_every_pass_size(arch: str, dtype: torch.dtype) -> None:
    model = engine_model(arch, dtype)
    tokens = torch.randint(3, 400, (1, PREFIX + 64), generator=torch.Generator().manual_seed(4))
    one_by_one, cache = passes(model, tokens, 1)
    for size in PASS_SIZES[1:]:
        logits, other = passes(model, tokens, size)
        assert torch.equal(logits, one_by_one), f"pass size {size}"
        for layer in range(len(cache.layers)):
            assert torch.equal(other.layers[layer].keys, cache.layers[layer].keys)
            assert torch.equal(other.layers[layer].values, cache.layers[layer].values)


def test_row_wise_attention_is_attention() -> None:
    # The same numbers as SDPA with a causal mask, to rounding: it changes the order of the
    # work, not what is computed.
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(5)
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 2, True
    q, k, v = torch.randn(1, 4, 6, 8), torch.randn(1, 2, 10, 8), torch.randn(1, 2, 10, 8)
    mask = torch.arange(10)[None, :] <= torch.arange(4, 10)[:, None]
    ours, _ = row_attention_forward(module, q, k, v, None, scaling=0.35)
    theirs, _ = sdpa_attention_forward(module, q, k, v, mask[None, None], scaling=0.35)
    assert torch.allclose(ours, theirs, atol=1e-5)
    with_mask, _ = row_attention_forward(module, q, k, v, mask[None, None], scaling=0.35)
    assert torch.equal(with_mask, ours)


def test_a_padded_or_batched_input_is_refused() -> None:
    module = torch.nn.Module()
    module.num_key_value_groups = 1
    q, k = torch.randn(2, 2, 3, 8), torch.randn(2, 2, 3, 8)
    with pytest.raises(ValueError, match="one sequence"):
        row_attention_forward(module, q, k, k, None)
    padded = torch.tensor([[False, True, True]] * 3)[None, None]
    with pytest.raises(ValueError, match="unpadded"):
        row_attention_forward(module, q[:1], k[:1], k[:1], padded)
