"""The context-cost benchmark: every size on every problem, in rotating order, summed right."""

from __future__ import annotations

import json
from pathlib import Path

from engine.bench.context_cost import main, rotated
from engine.bench.run import read_rows
from tests.helpers.tiny_gguf import write_tiny_gguf

# Three top-level blocks; the reference changes the middle one, so with N context lines the
# selection is `add` and up to N lines of `one` and `neg` are context.
BEFORE = ("def one():\n    return 1\n\n\ndef add(a, b):\n    return a - b\n\n\n"
          "def neg(a):\n    return -a\n")
AFTER = BEFORE.replace("a - b", "a + b")


def test_each_size_leads_in_turn() -> None:
    assert [rotated([0, 5, 20], i) for i in range(4)] == [
        [0, 5, 20], [5, 20, 0], [20, 0, 5], [0, 5, 20]]


def test_every_problem_runs_at_every_size_and_context_adds_prompt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "canitedit").mkdir(parents=True)
    with (data / "canitedit" / "test.jsonl").open("w") as f:
        for name in ("1_add", "2_add"):
            f.write(json.dumps({"full_name": name, "before": BEFORE, "after": AFTER,
                                "instruction_descriptive": "Fix add.",
                                "instruction_lazy": "fix", "tests": ""}) + "\n")
    model = write_tiny_gguf(tmp_path / "t.gguf", "qwen2", matrix_type="Q8_0")
    out = tmp_path / "out"
    assert main(["--model", str(model), "--threads", "1", "--context-lines", "0,3",
                 "--data", str(data), "--out", str(out)]) == 0
    rows = read_rows(out / "rows.csv")
    assert [(r["task"], r["context_lines"], r["position"]) for r in rows] == [
        ("1_add", "0", "0"), ("1_add", "3", "1"), ("2_add", "3", "0"), ("2_add", "0", "1")]
    by = {(r["task"], int(r["context_lines"])): r for r in rows}
    for task in ("1_add", "2_add"):
        assert int(by[(task, 3)]["prompt_tokens"]) > int(by[(task, 0)]["prompt_tokens"])
        assert all(int(by[(task, n)]["forward_passes"]) >= 1 for n in (0, 3))
    summary = (out / "summary.md").read_text()
    assert summary.startswith("2 problems, every size on each")
    zero = sum(int(by[(t, 0)]["prompt_tokens"]) for t in ("1_add", "2_add"))
    assert f"| 0 | {zero} |" in summary
    assert "| 0 |" in summary and "| 1.000 |" in summary  # the first size against itself
