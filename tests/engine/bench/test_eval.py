"""`specedit eval`: rows, summary, failure causes and resume on a synthetic CanItEdit-like set.

Failure causes are checked with a scripted stand-in model (tests/helpers/scripted_model.py):
a random model's answers cannot be chosen, and each cause needs a known answer. The command
line runs end to end on the tiny random chat model.
"""

from __future__ import annotations

import csv
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from engine.bench.eval import (
    CANNOT_RUN_HERE,
    CUT_SHORT,
    NO_CLOSING_FENCE,
    OUTSIDE_REQUEST,
    PASSED,
    TIMEOUT,
    WRONG_EDIT,
    EvalRow,
    EvalSettings,
    evaluate,
    open_log,
    problem_split,
)
from engine.bench.eval_report import main as report_main
from engine.bench.eval_report import write_eval_report
from engine.bench.sandbox import NETWORK_BLOCKED
from engine.bench.tasks import Task, load_canitedit
from engine.cli.main import main
from engine.contract import PROMPT_FORMATS
from engine.model.loading import LoadedModel
from engine.rewriting.prompt import build_prompt
from tests.helpers.scripted_model import PromptScriptedModel
from tests.helpers.tiny_models import chat_tokenizer


class Listener:
    """A real TCP server on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def problems(port: int) -> list[dict[str, object]]:
    """One problem per outcome: passes unchanged, fails unchanged, needs a missing library,
    loops forever unchanged, and reaches for the network."""
    rows = [
        ("1_same", "def double(x):\n    return 2 * x\n",
         "def double(x):\n    return x + x\n", "assert double(3) == 6\n"),
        ("2_wrong", "def add(a, b):\n    return a - b\n\n\ndef neg(a):\n    return -a\n",
         "def add(a, b):\n    return a + b\n\n\ndef neg(a):\n    return -a\n",
         "assert add(2, 3) == 5\nassert neg(2) == -2\n"),
        ("3_missing", "def one():\n    return 1\n", "def one():\n    return 1.0\n",
         "import specedit_no_such_module\nassert one() == 1\n"),
        ("4_loop", "def spin(n):\n    while True:\n        pass\n",
         "def spin(n):\n    return n\n", "assert spin(3) == 3\n"),
        ("5_socket", "import socket\n\n\ndef ping(port):\n"
         "    with socket.create_connection(('127.0.0.1', port), timeout=5):\n"
         "        return True\n",
         "import socket\n\n\ndef ping(port):\n"
         "    with socket.create_connection(('127.0.0.1', port), timeout=5) as s:\n"
         "        return s is not None\n",
         f"assert ping({port})\n"),
    ]
    return [{"id": int(name.split("_")[0]), "name": name.split("_", 1)[1], "full_name": name,
             "before": before, "after": after, "tests": tests,
             "instruction_descriptive": f"Make {name} right, in detail.",
             "instruction_lazy": f"fix {name}",
             "taxonomy": {"change_kind": "corrective", "libraries": [], "topic": "test"}}
            for name, before, after, tests in rows]


@pytest.fixture
def data_dir(tmp_path: Path, listener: Listener) -> Path:
    (tmp_path / "data" / "canitedit").mkdir(parents=True)
    (tmp_path / "data" / "canitedit" / "test.jsonl").write_text(
        "\n".join(json.dumps(p) for p in problems(listener.port)) + "\n")
    return tmp_path / "data"


def scripted(tasks: list[Task], settings: EvalSettings, answers: dict[str, str | None],
             truncated: dict[str, str] | None = None) -> LoadedModel:
    """A stand-in whose greedy answer to each problem's prompt is answers[task] then the
    closing fence (None: the original unchanged), or truncated[task] then end-of-text."""
    tok = chat_tokenizer()
    scripts: dict[tuple[int, ...], list[int]] = {}
    for task in tasks:
        split = problem_split(task, settings)
        for prompt_format in settings.prompt_formats:
            p = build_prompt(tok, split.selection, task.instruction, language="python",
                             context_before=split.context_before,
                             context_after=split.context_after, prompt_format=prompt_format)
            if truncated and task.id in truncated:
                script = tok(truncated[task.id], add_special_tokens=False)["input_ids"]
                script += [tok.eos_token_id]
            elif answers.get(task.id) is None:
                script = list(p.draft_ids)
            else:
                joint = tok(p.text + answers[task.id] + "```",
                            add_special_tokens=False)["input_ids"]
                assert joint[: len(p.prompt_ids)] == p.prompt_ids
                script = joint[len(p.prompt_ids):]
            scripts[tuple(p.prompt_ids)] = script
    model = PromptScriptedModel(scripts, len(tok))
    return LoadedModel(model=model, tokenizer=tok, name="scripted", path="",
                       device=torch.device("cpu"), dtype=torch.float32)


def run_eval(tmp_path: Path, data_dir: Path, settings: EvalSettings,
             answers: dict[str, str | None] | None = None,
             truncated: dict[str, str] | None = None,
             kinds: tuple[str, ...] = ("descriptive",)) -> list[EvalRow]:
    problems = [(kind, t) for kind in kinds for t in load_canitedit(data_dir, kind)]
    loaded = scripted([t for _, t in problems], settings, answers or {}, truncated)
    rows: list[EvalRow] = []
    log = open_log(tmp_path / "out" / "rows.csv", resume=False)
    evaluate(loaded, problems, settings, log,
             on_row=lambda row: rows.append(row) if row else None)
    return rows


def test_each_problem_gets_its_cause(tmp_path: Path, data_dir: Path,
                                     listener: Listener) -> None:
    settings = EvalSettings(methods=["speculative"], prompt_formats=list(PROMPT_FORMATS),
                            timeout=3)
    # 1, 3 and 5 answer the original unchanged; 2 and 4 change something that does not help.
    rows = run_eval(tmp_path, data_dir, settings, answers={
        "2_wrong": "def add(a, b):\n    # the difference\n    return a - b\n\n\n"
                   "def neg(a):\n    return -a\n",
        "4_loop": "def spin(n):\n    while True:\n        continue\n"})
    assert len(rows) == 5 * len(PROMPT_FORMATS)
    causes = {(r.task, r.prompt_format): r.cause for r in rows}
    for fmt in PROMPT_FORMATS:
        assert causes["1_same", fmt] == PASSED
        assert causes["2_wrong", fmt] == WRONG_EDIT
        assert causes["3_missing", fmt] == CANNOT_RUN_HERE
        assert causes["4_loop", fmt] == TIMEOUT
        assert causes["5_socket", fmt] == CANNOT_RUN_HERE
    for r in rows:
        assert r.finish_reason == "stop" and r.closing_fence
        assert r.output_tokens > 0 and r.wall_seconds > 0
        if r.task in ("1_same", "3_missing", "5_socket"):
            # The original as the draft: an unchanged answer is accepted in one pass.
            assert r.forward_passes == 1
            assert r.code == load_canitedit(data_dir)[int(r.task[0]) - 1].code
        else:
            assert 1 < r.forward_passes < r.output_tokens
    by_task = {r.task: r for r in rows if r.prompt_format == PROMPT_FORMATS[0]}
    assert by_task["1_same"].passed and by_task["1_same"].test_error == ""
    assert by_task["3_missing"].reference_passes_here is False
    assert "specedit_no_such_module" in by_task["3_missing"].test_error
    assert by_task["4_loop"].test_error == "timed out" and by_task["4_loop"].test_seconds >= 3
    assert by_task["4_loop"].reference_passes_here is True
    assert NETWORK_BLOCKED in by_task["5_socket"].test_error
    assert listener.accepted == 0  # the network guard held: no test reached the server
    # The server was reachable all along: it was the sandbox that refused.
    socket.create_connection(("127.0.0.1", listener.port), timeout=5).close()
    for _ in range(50):
        if listener.accepted:
            break
        threading.Event().wait(0.1)
    assert listener.accepted == 1


def test_cut_short_no_fence_and_edit_outside_request(tmp_path: Path, data_dir: Path) -> None:
    settings = EvalSettings(methods=["speculative"], prompt_formats=["instruction-first"],
                            timeout=5)
    rows = run_eval(
        tmp_path, data_dir, settings,
        # Changes neg, a function the reference leaves alone, and leaves add wrong.
        answers={"2_wrong": "def add(a, b):\n    return a - b\n\n\ndef neg(a):\n    return a\n",
                 # The right edit: passes.
                 "4_loop": "def spin(n):\n    return n\n"},
        # Stops with end-of-text inside the function: no closing fence, and broken code.
        truncated={"1_same": "def double(x):\n"})
    causes = {r.task: r.cause for r in rows}
    assert causes["2_wrong"] == OUTSIDE_REQUEST
    assert causes["4_loop"] == PASSED
    assert causes["1_same"] == NO_CLOSING_FENCE
    row = next(r for r in rows if r.task == "1_same")
    assert not row.closing_fence and row.finish_reason == "stop"

    capped = EvalSettings(methods=["speculative"], prompt_formats=["instruction-first"],
                          max_new_tokens=3, timeout=5)
    rows = run_eval(tmp_path, data_dir, capped)
    cut = {r.task: r for r in rows}["2_wrong"]
    assert cut.cause == CUT_SHORT and cut.finish_reason == "length" and cut.output_tokens == 3


def test_changed_selection_rewrites_the_block_and_reassembles_the_file(
        tmp_path: Path, data_dir: Path) -> None:
    settings = EvalSettings(methods=["speculative", "greedy"],
                            prompt_formats=["instruction-first"], selection="changed",
                            context_lines=1, timeout=5)
    task = {t.id: t for t in load_canitedit(data_dir)}["2_wrong"]
    split = problem_split(task, settings)
    assert split.selection == "def add(a, b):\n    return a - b\n"
    assert split.context_before == "" and split.context_after == "\n"
    # The model rewrites add only; the tests run on the whole file, neg included.
    rows = run_eval(tmp_path, data_dir, settings,
                    answers={"2_wrong": "def add(a, b):\n    return a + b\n"})
    fixed = [r for r in rows if r.task == "2_wrong"]
    assert [r.method for r in fixed] == ["speculative", "greedy"]
    for r in fixed:
        assert r.passed and r.selection == "changed+-1"
        assert r.code == task.reference
    assert fixed[0].code == fixed[1].code and fixed[0].forward_passes < fixed[1].forward_passes


def test_summary_counts_pass_at_1_and_causes(tmp_path: Path, data_dir: Path) -> None:
    settings = EvalSettings(methods=["speculative"],
                            prompt_formats=["instruction-first", "canitedit"], timeout=3)
    run_eval(tmp_path, data_dir, settings, kinds=("descriptive", "lazy"))
    text = write_eval_report(tmp_path / "out" / "rows.csv", tmp_path / "out", "**t**\n").read_text()
    # Every answer is the original: 1 passes; 2 cannot run here, so 1 of 3 runnable.
    assert ("| descriptive | instruction-first | speculative | file | 5 | 1 | 20.0% | 3 | 33.3% |"
            in text)
    assert "| lazy | canitedit | speculative | file | 5 | 1 | 20.0% | 3 | 33.3% |" in text
    # request-error, cannot-run-here, cut-short, no-closing-fence, unchanged, timeout,
    # edit-outside-request, wrong-edit: the wrong and the looping problem came back unchanged.
    assert ("| descriptive | canitedit | speculative | file | 0 | 2 | 0 | 0 | 2 | 0 | 0 | 0 |"
            in text)
    assert "| descriptive | speculative | file | canitedit | 5 | 1 | 0 |" in text
    assert text.startswith("**t**")


def test_runs_of_two_models_merge_into_one_summary(tmp_path: Path, data_dir: Path) -> None:
    settings = EvalSettings(methods=["speculative"], prompt_formats=["canitedit"], timeout=3)
    run_eval(tmp_path / "a", data_dir, settings)
    rows_b = tmp_path / "b.csv"
    # The same rows under another model's name: the merged table keeps them apart.
    text = (tmp_path / "a" / "out" / "rows.csv").read_text()
    rows_b.write_text(text.replace(",scripted,", ",other,"))
    out = tmp_path / "merged.md"
    assert report_main([str(tmp_path / "a" / "out" / "rows.csv"), str(rows_b), "--out",
                        str(out)]) == 0
    merged = out.read_text()
    assert "| scripted | descriptive | canitedit | speculative | file | 5 | 1 |" in merged
    assert "| other | descriptive | canitedit | speculative | file | 5 | 1 |" in merged


def test_eval_command_end_to_end_with_resume(tmp_path: Path, data_dir: Path,
                                             tiny_chat_model_dir: Path) -> None:
    out = tmp_path / "cli"
    argv = ["eval", "--model", str(tiny_chat_model_dir), "--dtype", "float32", "--device", "cpu",
            "--data", str(data_dir), "--tasks", "1,2", "--prompt-format", "all",
            "--instruction", "descriptive,lazy", "--max-new-tokens", "12", "--timeout", "5",
            "--out", str(out)]
    assert main(argv) == 0
    with (out / "rows.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(EvalRow.__dataclass_fields__)
    assert {(r["task"], r["instruction"], r["prompt_format"]) for r in rows} == {
        (t, k, f) for t in ("1_same", "2_wrong") for k in ("descriptive", "lazy")
        for f in PROMPT_FORMATS}
    for r in rows:
        assert r["method"] == "speculative" and r["selection"] == "file"
        assert r["passed"] in ("True", "False") and int(r["output_tokens"]) <= 12
        assert r["cause"] == ("passed" if r["passed"] == "True" else r["cause"])
    # The three formats are three prompts.
    assert len({r["prompt_tokens"] for r in rows if r["task"] == "1_same"
                and r["instruction"] == "descriptive"}) == 3
    assert "## pass@1 and speed" in (out / "summary.md").read_text()

    # --resume finds every row done; a method added on a resume gets only its rows, and
    # speculative wrote exactly greedy's text.
    assert main([*argv, "--resume"]) == 0
    with (out / "rows.csv").open() as f:
        assert list(csv.DictReader(f)) == rows
    assert main([*argv, "--resume", "--method", "speculative,greedy"]) == 0
    with (out / "rows.csv").open() as f:
        again = list(csv.DictReader(f))
    assert again[: len(rows)] == rows and len(again) == 2 * len(rows)
    greedy = {(r["task"], r["instruction"], r["prompt_format"]): r["code"]
              for r in again[len(rows):]}
    assert all(r["code"] == greedy[r["task"], r["instruction"], r["prompt_format"]]
               for r in rows)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--prompt-format", "chatty", "--prompt-format 'chatty'"),
    ("--instruction", "sloppy", "--instruction 'sloppy'"),
    ("--method", "beam", "unknown method 'beam'"),
    ("--context-lines", "-1", "--context-lines must be >= 0"),
])
def test_bad_options_fail_before_a_model_loads(tmp_path: Path, option: str, value: str,
                                               message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["eval", "--model", str(tmp_path / "no-such-model"), "--data", str(tmp_path),
            "--out", str(tmp_path / "o"), option, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_resume_refuses_a_csv_of_other_columns(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("task,method\nx,greedy\n")
    with pytest.raises(Exception, match="has other columns"):
        open_log(tmp_path / "rows.csv", resume=True)
