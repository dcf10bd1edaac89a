"""`specedit bench --endpoint`: two tiny tasks against a real `specedit api` process."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli.main import main
from tests.helpers.api_server import ApiServer, running_api_server

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
MAX_NEW_TOKENS = 12


@pytest.fixture(scope="module")
def api(tiny_chat_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[ApiServer]:
    log = tmp_path_factory.mktemp("bench-api") / "server.log"
    with running_api_server(tiny_chat_model_dir, log) as server:
        yield server


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "canitedit").mkdir()
    (tmp_path / "canitedit" / "test.jsonl").write_text(
        "\n".join(json.dumps(t) for t in TASKS) + "\n")
    return tmp_path


def rows_of(out: Path) -> list[dict[str, str]]:
    with (out / "rows.csv").open() as f:
        return list(csv.DictReader(f))


def test_endpoint_rows_with_and_without_prediction_match_in_process_greedy(
        api: ApiServer, data_dir: Path, tmp_path: Path, tiny_chat_model_dir: Path) -> None:
    out = tmp_path / "out"
    before = api.health()["forward_passes"]
    assert main(["bench", "--endpoint", api.v1, "--endpoint-model", api.model,
                 "--methods", "greedy", "--model", str(tiny_chat_model_dir),
                 "--dtype", "float32", "--data", str(data_dir), "--no-example",
                 "--max-new-tokens", str(MAX_NEW_TOKENS), "--out", str(out)]) == 0
    rows = rows_of(out)
    assert {(r["task"], r["method"]) for r in rows} == {
        (t, m) for t in ("1_adder", "2_greet")
        for m in ("greedy", "endpoint:prediction", "endpoint:no-prediction")}
    remote = [r for r in rows if r["method"].startswith("endpoint:")]
    for r in remote:
        # The endpoint decodes greedily with our prompt: in-process greedy's text.
        assert r["identical_to_greedy"] == "True", r
        assert r["device"] == api.v1 and r["model"] == api.model
        assert 1 <= int(r["output_tokens"]) <= MAX_NEW_TOKENS
        assert int(r["forward_passes"]) >= 1  # the server's own count
        assert r["correct"] in ("True", "False")
    # Every pass the rows report is one the server made (the rest: the warm-up request).
    spent = api.health()["forward_passes"] - before
    assert sum(int(r["forward_passes"]) for r in remote) < spent
    with_prediction = [r for r in remote if r["method"] == "endpoint:prediction"]
    assert all(int(r["drafted_tokens"]) > 0 for r in with_prediction)
    summary = (out / "summary.md").read_text()
    assert "compared with in-process greedy" in summary
    assert "| endpoint:prediction | 2 |" in summary


def test_endpoint_only_compares_with_the_first_method(
        api: ApiServer, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["bench", "--endpoint", api.v1, "--endpoint-model", api.model,
                 "--prediction", "both", "--data", str(data_dir), "--no-example",
                 "--max-new-tokens", str(MAX_NEW_TOKENS), "--out", str(out)]) == 0
    rows = rows_of(out)
    assert [r["method"] for r in rows] == ["endpoint:prediction", "endpoint:no-prediction"] * 2
    # Greedy either way: the text does not depend on the prediction.
    assert all(r["identical_to_greedy"] == "True" for r in rows)
    assert "compared with endpoint:prediction" in (out / "summary.md").read_text()


def test_a_bad_endpoint_url_is_one_clear_line(data_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--endpoint", "gpu-box:8000", "--data", str(data_dir),
                 "--out", str(tmp_path / "out")])
    assert code != 0
    err = capsys.readouterr().err
    assert "--endpoint" in err and "http://" in err
