"""`specedit bench` on a tiny model and two tasks: every column present and sane."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from engine.bench.lower_bound import lower_bound_passes
from engine.bench.pass_cost import (
    PassCost,
    measure_pass_costs,
    pass_cost_markdown,
    unchanged_rewrite_ceiling,
)
from engine.bench.tasks import run_tests, worked_example_is_right
from engine.cli.main import main

TASKS = [
    {"id": 1, "name": "adder", "full_name": "1_adder",
     "before": "def add(a, b):\n    return a - b\n",
     "after": "def add(a, b):\n    return a + b\n",
     "instruction_descriptive": "Fix add so that it returns the sum.",
     "instruction_lazy": "fix add", "tests": "assert add(2, 3) == 5\n"},
    {"id": 2, "name": "greet", "full_name": "2_greet",
     "before": "def greet(name):\n    return 'hi ' + name\n",
     "after": "def greet(name: str) -> str:\n    return 'hi ' + name\n",
     "instruction_descriptive": "Add type hints.", "instruction_lazy": "types",
     "tests": "assert greet('a') == 'hi a'\n"},
]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "canitedit").mkdir()
    (tmp_path / "canitedit" / "test.jsonl").write_text(
        "\n".join(json.dumps(t) for t in TASKS) + "\n")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "visualization.ts").write_text(
        "const [a, setA] = createSignal(0);\nconst [shouldRefreshGold, setShouldRefreshGold] =\n"
        "  createSignal<boolean>(false);\n")
    (tmp_path / "examples" / "README.md").write_text(
        "Instruction:\n\n    Rewrite the code and add a single line comment above "
        "`const [shouldRefreshGold, setShouldRefreshGold]` explaining what it does.\n")
    return tmp_path


COLUMNS = ["task", "method", "model", "dtype", "device", "prompt_tokens", "output_tokens",
           "forward_passes", "drafted_tokens", "accepted_tokens", "wall_seconds",
           "tokens_per_second", "identical_to_greedy", "first_difference",
           "lower_bound_passes", "efficiency", "correct", "finish_reason"]


def test_bench_writes_rows_summary_and_plots(data_dir: Path, tmp_path: Path,
                                             tiny_chat_model_dir: Path) -> None:
    out = tmp_path / "out"
    argv = ["bench", "--model", str(tiny_chat_model_dir), "--dtype", "float32", "--data",
            str(data_dir), "--max-new-tokens", "24", "--out", str(out)]
    assert main(argv) == 0
    with (out / "rows.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys()) == COLUMNS
    assert {(r["task"], r["method"]) for r in rows} == {
        (t, m) for t in ("1_adder", "2_greet", "worked_example")
        for m in ("greedy", "hf-prompt-lookup", "speculative")}
    for r in rows:
        assert r["identical_to_greedy"] == "True"  # float32: exact
        assert int(r["forward_passes"]) >= 1
        assert int(r["output_tokens"]) <= 24
        assert float(r["wall_seconds"]) > 0 and float(r["tokens_per_second"]) >= 0
        assert int(r["lower_bound_passes"]) >= 1 and float(r["efficiency"]) > 0
        assert r["correct"] in ("True", "False")
        if r["method"] == "greedy":
            assert int(r["forward_passes"]) == int(r["output_tokens"]) + (
                r["finish_reason"] == "stop")
    summary = (out / "summary.md").read_text()
    assert "| speculative | 3 |" in summary and "median speed-up vs greedy" in summary
    assert "median vs hf-prompt-lookup" in summary
    for png in ("speedup_per_task.png", "passes_vs_lower_bound.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"

    # --resume finds every row done and adds none.
    assert main([*argv, "--resume"]) == 0
    with (out / "rows.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(rows)

    # A method added on a resume gets its rows, compared with greedy run again as reference.
    assert main([*argv, "--resume", "--methods", "greedy,hf-prompt-lookup,speculative,"
                 "speculative:2"]) == 0
    with (out / "rows.csv").open() as f:
        again = list(csv.DictReader(f))
    assert again[:len(rows)] == rows
    added = again[len(rows):]
    assert sorted(r["task"] for r in added) == ["1_adder", "2_greet", "worked_example"]
    for r in added:
        assert r["method"] == "speculative:2" and r["identical_to_greedy"] == "True"
        # Each pass accepts at most the 2 drafted tokens plus the model's own one.
        assert int(r["forward_passes"]) * 3 >= int(r["output_tokens"])


def test_synthetic_mode_runs_on_a_tiny_shape(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    assert main(["bench", "--synthetic", "--size", "tiny", "--device", "cpu", "--dtype",
                 "float32", "--limit", "2", "--synthetic-tokens", "160", "--out", str(out)]) == 0
    with (out / "rows.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert {r["method"] for r in rows} == {"greedy", "prompt-lookup", "speculative"}
    # No transformers baseline here: the summary compares with our n-gram proposer.
    assert "median vs prompt-lookup" in (out / "summary.md").read_text()
    assert all(r["identical_to_greedy"] == "True" for r in rows)
    spec = [r for r in rows if r["method"] == "speculative"]
    greedy = [r for r in rows if r["method"] == "greedy"]
    # Drafting from the edited original must save passes over greedy.
    assert sum(int(r["forward_passes"]) for r in spec) < sum(
        int(r["forward_passes"]) for r in greedy)


def test_capped_drafts_cost_passes_not_exactness(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    assert main(["bench", "--synthetic", "--size", "tiny", "--device", "cpu", "--dtype",
                 "float32", "--limit", "2", "--synthetic-tokens", "160", "--out", str(out),
                 "--methods", "greedy,speculative,speculative:8"]) == 0
    with (out / "rows.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert all(r["identical_to_greedy"] == "True" for r in rows)
    passes = {m: sum(int(r["forward_passes"]) for r in rows if r["method"] == m)
              for m in ("greedy", "speculative", "speculative:8")}
    tokens = sum(int(r["output_tokens"]) for r in rows if r["method"] == "speculative:8")
    assert passes["speculative"] < passes["speculative:8"] < passes["greedy"]
    assert passes["speculative:8"] * 9 >= tokens


def test_bad_method_fails_before_loading_a_model(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--model", str(tmp_path / "no-such-model"), "--out", str(tmp_path / "o")]
    assert main([*argv, "--methods", "greedy,speculative:0"]) == 2
    assert main([*argv, "--methods", "greedy,prompt-lookup:5"]) == 2
    assert main([*argv, "--methods", "beam"]) == 2
    assert "unknown method 'beam'" in capsys.readouterr().err
    # Synthetic mode has no tokenizer for transformers' baseline and no draft model.
    for method in ("hf-prompt-lookup", "draft-model"):
        assert main([*argv, "--synthetic", "--methods", f"greedy,{method}"]) == 2
        assert "cannot be used in synthetic mode" in capsys.readouterr().err


def test_lower_bound_counts_unaligned_tokens_and_hunks() -> None:
    assert lower_bound_passes([1, 2, 3], [1, 2, 3]) == (1, 0, 0)
    assert lower_bound_passes([1, 2, 3], [1, 9, 9, 2, 3]) == (4, 2, 1)  # one insertion
    assert lower_bound_passes([1, 2, 3, 4], [1, 4]) == (2, 0, 1)  # one deletion
    assert lower_bound_passes([1, 2, 3, 4], [7, 2, 3, 8]) == (5, 2, 2)  # two replacements


def test_task_checks() -> None:
    assert run_tests("def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5", 10)
    assert not run_tests("def add(a, b):\n    return a - b\n", "assert add(2, 3) == 5", 10)
    assert not run_tests("while True: pass\n", "", 1)
    declaration = "const [shouldRefreshGold, setShouldRefreshGold] =\n"
    assert worked_example_is_right("x\n// refreshes gold\n" + declaration)
    assert not worked_example_is_right(declaration)


def test_pass_costs_feed_the_asked_token_counts(tmp_path: Path) -> None:
    from engine.bench.synthetic import build_model

    model = build_model("qwen2", "tiny", torch.device("cpu"), torch.float32)
    fed: list[int] = []
    handle = model.register_forward_pre_hook(
        lambda _m, args, kwargs: fed.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    try:
        costs = measure_pass_costs(model, context=16, sizes=(1, 4, 9), repeats=2)
    finally:
        handle.remove()
    # The context once, then each size three times (a warm-up and two timed passes).
    assert fed == [16, 1, 1, 1, 4, 4, 4, 9, 9, 9]
    assert [c.tokens for c in costs] == [1, 4, 9]
    assert all(c.seconds > 0 for c in costs)


def test_unchanged_rewrite_ceiling_is_greedy_over_one_pass() -> None:
    costs = [PassCost(1, 0.1), PassCost(512, 5.12)]  # batched: 0.01 s/token
    # greedy: 450 x 0.01 + 300 x 0.1 = 34.5 s; speculative: 750 x 0.01 = 7.5 s
    assert unchanged_rewrite_ceiling(costs, 450, 300) == pytest.approx(4.6)
    text = pass_cost_markdown(costs, "t", 450, 300)
    assert "| 512 | 5120.0 | 10.00 | 0.100 |" in text and "4.60x" in text


def test_passcost_command_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "cost.md"
    assert main(["passcost", "--synthetic", "--size", "tiny", "--device", "cpu", "--dtype",
                 "float32", "--context", "8", "--sizes", "1,4", "--repeats", "1",
                 "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("**synthetic-qwen2-tiny (random weights)**, float32, cpu")
    timed = lines[:next(i for i, ln in enumerate(lines) if ln.startswith("Curve"))]
    assert [ln.split("|")[1].strip() for ln in timed if ln.startswith("| 1 ") or
            ln.startswith("| 4 ")] == ["1", "4"]
    # The curve speculative drafts from (the test suite declares it free: whole remainders).
    assert "Curve the engine uses (environment): t(n) = 1000.00 ms + 0.000 ms" in out.read_text()
    assert "| 0 | 0.990 | 50 / 50 | 200 / 200 | 1000 / 1000 |" in lines
    assert main(["passcost", "--synthetic", "--size", "tiny", "--sizes", "4,8"]) == 2
