"""The README's set-up command, run exactly as written, with the real default model: the
rewrite it shows must be right with every default (no context or prompt flags).

It renames a local variable that shares its function with a parameter; the check is that
every `value` in the function became `amount` and nothing else changed (the parameter
`nbytes` above all, which a worse prompt layout renamed instead).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.contract import MODEL_ENV

pytestmark = pytest.mark.real_model

REPO = Path(__file__).resolve().parents[1]


def setup_command() -> list[str]:
    """The `specedit rewrite ...` command of the README's set-up block, as argv."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Set up\n\n```sh\n(.*?)```", readme, re.S)
    assert block, "the README has no set-up block"
    script = re.sub(r"\\\n", " ", block.group(1))  # join continued lines
    for line in script.splitlines():
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            if words[:2] == ["specedit", "rewrite"]:
                return words
    raise AssertionError("the README's set-up block runs no `specedit rewrite`")


def test_the_setup_command_is_read_from_the_readme() -> None:
    argv = setup_command()
    assert "--instruction" in argv and "--lines" in argv
    # Every default: the command sets nothing that decides the edit.
    assert not {"--context-lines", "--model", "--dtype", "--method"} & set(argv)


def test_the_readme_rewrite_is_right_with_every_default() -> None:
    argv = setup_command()
    specedit = shutil.which("specedit")
    command = [specedit, *argv[1:]] if specedit else [sys.executable, "-m", "engine.cli",
                                                      *argv[1:]]
    env = {k: v for k, v in os.environ.items() if k != MODEL_ENV}  # the built-in default
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    diff = proc.stdout
    removed = [line[1:] for line in diff.splitlines()
               if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff.splitlines()
             if line.startswith("+") and not line.startswith("+++")]
    assert removed, f"no change:\n{diff}\n{proc.stderr[-2000:]}"
    # Each removed line comes back with `value` renamed and nothing else touched.
    assert [line.replace("value", "amount") for line in removed] == added, diff
    assert not any(line.lstrip().startswith("def ") for line in removed), diff  # `nbytes` kept
