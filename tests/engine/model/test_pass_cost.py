"""The pass-cost curve: fitted from points, overridden by the environment or a declaration,
measured at most once per model (and once per machine for catalog models, kept on disk).

Timings are only ever checked for being positive: what is tested is which passes run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.contract import InvalidRequestError
from engine.decode.draft_length import WEAK_PRIOR, DraftLengthPolicy, PassCostCurve
from engine.model.loading import LoadedModel
from engine.model.pass_cost import (
    PASS_COST_ENV,
    PassCost,
    curve_from_environment,
    fit_curve,
    model_pass_cost,
    pass_cost,
)
from tests.helpers.scripted_model import FREE_TOKENS, ScriptedModel
from tests.helpers.tiny_models import tiny_model


def counting_model() -> torch.nn.Module:
    """A tiny real model that counts its forward passes (in `calls`)."""
    model = tiny_model("llama", vocab_size=300, layers=1, hidden=32)
    model.calls = 0

    def count(module: torch.nn.Module, args: tuple) -> None:  # type: ignore[type-arg]
        module.calls += 1

    model.register_forward_pre_hook(count)
    return model


def loaded(model: torch.nn.Module, name: str = "tiny") -> LoadedModel:
    return LoadedModel(model, None, name, name, torch.device("cpu"), torch.float32)


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Undo the test suite's declared curve, and keep any disk copy in a temporary cache."""
    monkeypatch.delenv(PASS_COST_ENV, raising=False)
    monkeypatch.setenv("SPECEDIT_CACHE", str(tmp_path))


def test_fit_recovers_a_line_and_needs_two_sizes() -> None:
    curve = fit_curve([PassCost(1, 0.012), PassCost(16, 0.042), PassCost(32, 0.074)])
    assert curve.fixed_seconds == pytest.approx(0.010, rel=0.02)
    assert curve.seconds_per_token == pytest.approx(0.002, rel=0.02)
    assert curve.token_ratio == pytest.approx(0.2, rel=0.05)
    assert curve.single_seconds == 0.012 and curve.seconds(1) == 0.012  # kept as measured
    flat = fit_curve([PassCost(1, 0.05), PassCost(16, 0.04)])  # noise: never a negative b
    assert flat.seconds_per_token == 0.0 and flat.fixed_seconds > 0
    with pytest.raises(ValueError, match="two sizes"):
        fit_curve([PassCost(4, 0.1), PassCost(4, 0.2)])


def test_a_one_token_pass_off_the_line_is_kept_apart_and_short_drafts_pay_for_it() -> None:
    # 0.5B float32 on one CPU thread: a one-token pass takes the matrix-vector path.
    curve = fit_curve([PassCost(1, 0.145), PassCost(4, 0.263), PassCost(16, 0.39)])
    assert curve.seconds(1) == 0.145
    assert curve.seconds(4) == pytest.approx(0.263, rel=1e-6)
    assert curve.seconds(16) == pytest.approx(0.39, rel=1e-6)
    line = fit_curve([PassCost(1, 0.145), PassCost(16, 0.39)])  # the old two-point fit
    assert line.single_seconds is None and line.seconds(4) < 0.2  # far under the 0.263 measured
    # A one-token draft at even odds: worth it on the line, not once the step is counted.
    assert DraftLengthPolicy(curve, WEAK_PRIOR, None).choose(1) == 0
    assert DraftLengthPolicy(line, WEAK_PRIOR, None).choose(1) == 1


def test_environment_declares_a_curve_and_bad_values_are_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASS_COST_ENV, "0.05, 0.002")
    assert curve_from_environment() == PassCostCurve(0.05, 0.002, "environment")
    for bad in ("x", "1", "0,1", "1,-1", "1,2,3"):
        monkeypatch.setenv(PASS_COST_ENV, bad)
        with pytest.raises(InvalidRequestError, match=PASS_COST_ENV) as info:
            curve_from_environment()
        assert "\n" not in str(info.value)
    monkeypatch.setenv(PASS_COST_ENV, "")
    assert curve_from_environment() is None


def test_a_declared_curve_is_used_without_a_pass(measured: None) -> None:
    model = ScriptedModel(3, [5, 6], 10)
    assert pass_cost(loaded(model)) is FREE_TOKENS
    assert model_pass_cost(model) is FREE_TOKENS
    assert model.calls == 0


def test_the_curve_is_measured_once_per_loaded_model(measured: None, tmp_path: Path) -> None:
    model = counting_model()
    target = loaded(model)
    curve = pass_cost(target)
    assert curve.source == "measured" and curve.fixed_seconds > 0
    assert curve.seconds_per_token >= 0
    passes = model.calls
    assert 4 <= passes <= 11  # a context, then a few passes of three sizes
    assert pass_cost(target) is curve
    assert target.pass_cost == {torch.get_num_threads(): curve}
    assert model.calls == passes
    # Another thread count is another curve: measured once for it too.
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if before != 1 else 2)
        other = pass_cost(target)
        assert other is not curve and model.calls > passes
        assert pass_cost(target) is other and len(target.pass_cost) == 2
    finally:
        torch.set_num_threads(before)
    # A folder model is never written to disk: its weights may change under the same path.
    assert not (tmp_path / "pass-cost").exists()
    bare = counting_model()
    assert model_pass_cost(bare) is model_pass_cost(bare)
    assert 4 <= bare.calls <= 11


def test_a_catalog_models_curve_is_kept_on_disk(measured: None, tmp_path: Path) -> None:
    name = "qwen2.5-coder-0.5b-instruct"  # a catalog name; the weights are a tiny stand-in
    first = counting_model()
    measured_curve = pass_cost(loaded(first, name))
    assert [p.name.startswith(name) for p in (tmp_path / "pass-cost").iterdir()] == [True]
    second = counting_model()
    again = pass_cost(loaded(second, name))
    assert second.calls == 0 and again.source == "disk"
    assert (again.fixed_seconds, again.seconds_per_token, again.single_seconds) == (
        measured_curve.fixed_seconds, measured_curve.seconds_per_token,
        measured_curve.single_seconds)
    # A copy written before the one-token pass was kept apart is measured again.
    for path in (tmp_path / "pass-cost").iterdir():
        path.write_text('{"fixed_seconds": 0.1, "seconds_per_token": 0.01, "source": "measured"}')
    stale = counting_model()
    assert pass_cost(loaded(stale, name)).source == "measured" and stale.calls > 0
    # An unreadable copy is measured again, not trusted.
    for path in (tmp_path / "pass-cost").iterdir():
        path.write_text("{not json")
    third = counting_model()
    assert pass_cost(loaded(third, name)).source == "measured" and third.calls > 0


def test_a_native_curve_is_kept_per_kernels_build(monkeypatch: pytest.MonkeyPatch) -> None:
    # A curve measured on older kernels must not price passes of newer ones.
    from types import SimpleNamespace

    from engine.model import pass_cost
    from engine.model.kernels import build

    native = SimpleNamespace(storage="gguf")
    monkeypatch.setattr(build, "build", lambda variant="native": Path("kernels-aaa.so"))
    before = pass_cost._forward_kind(native)
    monkeypatch.setattr(build, "build", lambda variant="native": Path("kernels-bbb.so"))
    assert pass_cost._forward_kind(native) != before
