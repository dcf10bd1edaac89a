"""`specedit rewrite`: output formats, and bad input that fails clearly and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import engine
from engine.cli.main import main

SOURCE = "line one\ndef f(x):\n    return x\n\nlast line\n"


@pytest.fixture
def source_file(tmp_path: Path) -> Path:
    path = tmp_path / "code.py"
    path.write_text(SOURCE)
    return path


def run(*argv: str) -> tuple[int, str, str]:
    """The CLI in a subprocess, as a user or the language server runs it."""
    proc = subprocess.run([sys.executable, "-m", "engine.cli", *argv], capture_output=True,
                          text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_json_output_has_the_documented_fields(source_file: Path,
                                               tiny_chat_model_dir: Path) -> None:
    code, out, _ = run("rewrite", str(source_file), "--lines", "2-3", "--instruction",
                       "add a docstring", "--model", str(tiny_chat_model_dir), "--dtype",
                       "float32", "--max-new-tokens", "40", "--json")
    assert code == 0
    data = json.loads(out)
    assert {"text", "method", "model", "stats"} <= data.keys()
    assert {"forward_passes", "prompt_tokens", "output_tokens", "drafted_tokens",
            "accepted_tokens", "wall_seconds", "tokens_per_second"} <= data["stats"].keys()
    assert data["method"] == "speculative"
    loaded = engine.load_model(str(tiny_chat_model_dir), device="cpu", dtype="float32")
    # The CLI gives the model the default context (20 lines each side: here, the whole file).
    direct = engine.rewrite(loaded, "def f(x):\n    return x\n", "add a docstring",
                            language="python", context_before="line one\n",
                            context_after="\nlast line\n", max_new_tokens=40)
    assert data["text"] == direct.text
    assert source_file.read_text() == SOURCE


def test_in_place_rewrites_only_the_selected_lines(source_file: Path,
                                                   tiny_chat_model_dir: Path) -> None:
    args = ["--lines", "2-3", "--instruction", "x", "--model", str(tiny_chat_model_dir),
            "--dtype", "float32", "--max-new-tokens", "30"]
    code, out, _ = run("rewrite", str(source_file), *args, "--json")
    text = json.loads(out)["text"]
    code, out, _ = run("rewrite", str(source_file), *args, "--in-place")
    assert code == 0
    assert source_file.read_text() == "line one\n" + text + "\nlast line\n"
    assert "forward passes" in out


def test_diff_output_then_stats_line(source_file: Path, tiny_chat_model_dir: Path) -> None:
    code, out, _ = run("rewrite", str(source_file), "--lines", "2-3", "--instruction", "x",
                       "--model", str(tiny_chat_model_dir), "--dtype", "float32",
                       "--max-new-tokens", "30", "--method", "greedy")
    assert code == 0
    assert out.splitlines()[-1].startswith("30 tokens, 30 forward passes")
    assert source_file.read_text() == SOURCE


def test_capped_method_caps_drafts_and_keeps_the_output(source_file: Path,
                                                        tiny_chat_model_dir: Path) -> None:
    args = ["--lines", "2-3", "--instruction", "x", "--model", str(tiny_chat_model_dir),
            "--dtype", "float32", "--max-new-tokens", "30", "--json"]
    results = {}
    for method in ("greedy", "speculative:1"):
        code, out, _ = run("rewrite", str(source_file), *args, "--method", method)
        assert code == 0
        results[method] = json.loads(out)
    assert results["speculative:1"]["method"] == "speculative:1"
    capped = results["speculative:1"]["stats"]
    assert results["speculative:1"]["text"] == results["greedy"]["text"]
    # One drafted token per pass: at most two output tokens per pass.
    assert capped["drafted_tokens"] <= capped["forward_passes"]
    assert capped["forward_passes"] * 2 >= capped["output_tokens"]


@pytest.mark.parametrize(("args", "message"), [
    (["--lines", "2-3", "--instruction", "x", "--method", "speculative:0"],
     "bad method 'speculative:0'"),
    (["--lines", "2-3", "--instruction", "x", "--method", "beam"], "unknown method 'beam'"),
    (["--lines", "2-3", "--instruction", "x", "--method", "draft-model"],
     "needs a draft model (--draft)"),
    (["--lines", "2-3", "--instruction", "x", "--max-new-tokens", "0"],
     "--max-new-tokens must be at least 1"),
    (["--lines", "4-4", "--instruction", "x"], "the selection (--lines) is empty"),
    (["--lines", "2-3", "--instruction", "  "], "--instruction is empty"),
    (["--lines", "2-9", "--instruction", "x"], "out of range: the file has 5 lines"),
    (["--lines", "0-1", "--instruction", "x"], "out of range"),
    (["--lines", "two", "--instruction", "x"], "is not START-END"),
])
def test_bad_input_exits_non_zero_with_one_line(source_file: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                args: list[str], message: str) -> None:
    # A model that does not exist: each refusal must come before any model is loaded.
    code = main(["rewrite", str(source_file), "--model", str(tmp_path / "no-model"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("specedit: error:") and message in err[0]
    assert source_file.read_text() == SOURCE


def test_help_shows_the_capped_spelling(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["rewrite", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "speculative:N caps every draft at N tokens" in help_text
    assert "--max-draft" not in help_text


def test_non_utf8_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.py"
    path.write_bytes("x = 'caf\xe9'\n".encode("latin-1"))
    assert main(["rewrite", str(path), "--instruction", "x"]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert path.read_bytes() == "x = 'caf\xe9'\n".encode("latin-1")


def test_prompt_too_long_is_refused(tmp_path: Path, tiny_chat_model_dir: Path) -> None:
    path = tmp_path / "big.py"
    path.write_text("value = 1\n" * 3000)
    code, _, err = run("rewrite", str(path), "--instruction", "x", "--in-place",
                       "--model", str(tiny_chat_model_dir), "--dtype", "float32")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "exceeds" in lines[0] and "context of 4096" in lines[0]
    assert path.read_text() == "value = 1\n" * 3000


@pytest.mark.parametrize("model", ["./no/such/folder", "no-such-org/no-such-model"])
def test_unknown_model_fails_at_once_naming_what_was_tried(source_file: Path,
                                                           model: str) -> None:
    code, _, err = run("rewrite", str(source_file), "--instruction", "x", "--in-place",
                       "--model", model)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "not found (tried the offline catalog" in lines[0]
    assert source_file.read_text() == SOURCE
