"""Linear layers packed for oneDNN compute what nn.Linear computes, and load_model packs them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from engine.model.loading import load_model
from engine.model.packed_linear import (
    ENV_SWITCH,
    PackedLinear,
    is_packed,
    pack_linears,
    packing_applies,
)
from tests.helpers.tiny_models import tiny_model

pytestmark = [pytest.mark.needs("onednn"),
              pytest.mark.skipif(not torch.backends.mkldnn.is_available(),
                                 reason="this torch build has no oneDNN")]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 48), (2, 48), (3, 48), (1, 2, 48), (1, 5, 48), (2, 17, 48)])
def test_packed_linear_matches_linear(bias: bool, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    linear = nn.Linear(48, 80, bias=bias)
    x = torch.randn(*shape)
    expected = linear(x)
    packed = PackedLinear(linear)
    got = packed(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # A strided view (as attention outputs can be) gives the same numbers.
    wide = torch.randn(*shape[:-1], 96)[..., ::2]
    torch.testing.assert_close(packed(wide), linear(wide), rtol=1e-5, atol=1e-5)


def test_pack_linears_replaces_every_linear_and_keeps_the_tied_embeddings() -> None:
    model = tiny_model("qwen2", seed=0, vocab_size=300)
    # Tied as in the Qwen2.5-Coder 0.5B and 1.5B models: the head is the embedding matrix.
    model.get_output_embeddings().weight = model.get_input_embeddings().weight
    prompt = torch.tensor([[5, 17, 42, 99, 3]])
    with torch.no_grad():
        before = model(prompt).logits
    linears = sum(type(m) is nn.Linear for m in model.modules())
    assert pack_linears(model) == linears > 0
    assert is_packed(model) and not any(type(m) is nn.Linear for m in model.modules())
    # The head is packed from the embedding matrix; the embeddings themselves stay dense.
    assert model.get_input_embeddings().weight.layout == torch.strided
    with torch.no_grad():
        after = model(prompt).logits
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)


def test_packing_applies_on_the_cpu_in_float32_and_can_be_switched_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.delenv(ENV_SWITCH, raising=False)
    assert packing_applies(cpu, torch.float32)
    assert not packing_applies(cpu, torch.float16)
    assert not packing_applies(torch.device("cuda"), torch.float32)
    monkeypatch.setenv(ENV_SWITCH, "0")
    assert not packing_applies(cpu, torch.float32)


def test_load_model_packs_on_the_cpu(tiny_model_dir: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_SWITCH, raising=False)
    assert is_packed(load_model(str(tiny_model_dir), "cpu", "float32").model)
    monkeypatch.setenv(ENV_SWITCH, "0")
    assert not is_packed(load_model(str(tiny_model_dir), "cpu", "float32").model)
