"""`specedit ksweep` through the method factory: every K exact, bad K refused before loading."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine
from engine.bench.ksweep import method_for_k, sweep
from engine.cli.main import main
from engine.decode.methods import MethodConfig


def test_k_values_are_draft_model_methods() -> None:
    assert method_for_k("3") == MethodConfig("draft-model", draft_k=3)
    assert method_for_k("auto") == MethodConfig("draft-model")
    with pytest.raises(engine.InvalidRequestError, match="--k '0': K is a whole number"):
        method_for_k("0")


def test_sweep_gives_the_targets_output_for_every_k(tiny_chat_model_dir: Path) -> None:
    target = engine.load_model(str(tiny_chat_model_dir), device="cpu", dtype="float32")
    base, rows = sweep(target, target, "def add(a, b):", 12, ["1", "3", "auto"],
                       log=lambda _line: None)
    assert [r.k for r in rows] == ["1", "3", "auto"]
    assert all(r.identical for r in rows)
    # The draft is the target itself: every draft token is accepted, K per verification.
    fixed = {r.k: r for r in rows}
    assert fixed["3"].target_passes < fixed["1"].target_passes <= base.stats.forward_passes


def test_bad_k_fails_before_any_model_loads(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ksweep", "--target", str(tmp_path / "none"), "--draft", str(tmp_path / "none"),
                 "--k", "1,x", "--out", str(tmp_path / "o")]) == 2
    assert "--k 'x': K is a whole number" in capsys.readouterr().err
