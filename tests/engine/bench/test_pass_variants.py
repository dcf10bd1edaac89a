"""`python -m engine.bench.pass_variants` on a tiny model: one table row per variant.

The compiled variants are left out: inductor takes minutes to compile even a tiny model.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.bench.pass_variants import main
from engine.model.packed_linear import ENV_SWITCH


@pytest.mark.parametrize("last_logits", [False, True])
def test_a_row_per_variant_with_a_time_per_size(tiny_chat_model_dir: Path, last_logits: bool,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SWITCH, os.environ.get(ENV_SWITCH, "1"))  # restored afterwards
    argv = ["--model", str(tiny_chat_model_dir), "--variants", "sdpa,packed,static",
            "--sizes", "1,3,8", "--context", "20", "--repeats", "1"]
    assert main(argv + (["--last-logits"] if last_logits else [])) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and not line.startswith("| variant")]
    assert [row.split(" | ")[0] for row in rows] == ["| sdpa", "| packed", "| static"]
    for row in rows:
        ready, *times = [float(c) for c in row.strip("| ").split(" | ")[1:]]
        assert ready >= 0 and len(times) == 4 and all(t > 0 for t in times)  # 3 sizes, per token


def test_an_unknown_variant_is_refused(tiny_chat_model_dir: Path) -> None:
    with pytest.raises(SystemExit, match="unknown variant 'jit'"):
        main(["--model", str(tiny_chat_model_dir), "--variants", "jit"])
