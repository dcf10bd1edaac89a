"""A real editor end to end: headless Neovim (Debian's 0.7) with the README's Lua config.

Neovim starts the server, the driver selects lines of a real file and runs the code action
with an instruction, or picks a preset in Neovim's own code-action menu; the rewrite streams
into a diff preview, and the driver presses the accept or the reject mapping. The test checks
the file Neovim wrote: the engine's own rewrite after accept, the file byte for byte as it was
after reject. With the config's `preview = false` a preset lands at once, with no preview.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.lsp import Reference

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
# Candidates for a rewrite the editor keeps byte for byte. Random weights write arbitrary
# bytes and which instruction gives a clean rewrite depends on every byte of the prompt, so
# the test tries many (a few dozen, each a 16-token rewrite by a tiny model).
INSTRUCTIONS = [f"{verb}{ending}"
                for ending in ("", ".", "!", " please", " here", " in this method")
                for verb in ("Make it shorter", "Add comments", "Add docstrings", "Add type hints",
                             "Simplify the code", "Rename the variables", "Use f-strings")]

pytestmark = [
    pytest.mark.editor,
    pytest.mark.skipif(shutil.which("nvim") is None,
                       reason="needs Neovim: apt-get install neovim (.ci/neovim-e2e.sh)"),
]


def editor_safe(text: str) -> bool:
    """Text Neovim keeps byte for byte (it turns \\r into line breaks, NUL into newlines)."""
    return all(c in "\n\t" or c.isprintable() for c in text)


def function_lines(source: str, name: str) -> tuple[int, int]:
    """1-based first and last line of a function's header and body."""
    lines = source.splitlines()
    first = next(i for i, line in enumerate(lines) if line.lstrip().startswith(f"def {name}("))
    indent = len(lines[first]) - len(lines[first].lstrip())
    last = first
    for i in range(first + 1, len(lines)):
        line = lines[i]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        if line.strip():
            last = i
    return first + 1, last + 1


@pytest.mark.parametrize(("action", "via"), [
    ("accept", "instruction"), ("reject", "instruction"),
    ("accept", "preset"),  # a preset is previewed like any rewrite
    ("direct", "preset"),  # unless preview = false: then it lands at once
])
def test_neovim_previews_then_accepts_or_rejects(
        tmp_path: Path, reference: Reference, server_settings: dict[str, Any], action: str,
        via: str):
    real = HERE / "sample_file.py"  # a real module (an older one of this repository), kept fixed
    source = real.read_text(encoding="utf-8")
    target = tmp_path / real.name
    target.write_bytes(real.read_bytes())
    first, last = function_lines(source, "update")

    expected = ""
    for instruction in INSTRUCTIONS:  # random weights write arbitrary bytes; take clean ones
        expected = reference.document_after(source, first - 1, last, instruction)
        if expected != source and editor_safe(expected):
            break
    else:
        pytest.fail("no instruction gives the tiny model a rewrite Neovim keeps byte for byte")

    home = tmp_path / "home"
    report_path = tmp_path / "report.json"
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "SPECEDIT_TEST_DIR": str(HERE),
        "SPECEDIT_CMD": json.dumps([sys.executable, "-m", "lsp_server", "--stdio"]),
        # The instruction is the only preset, for the runs that pick a preset.
        "SPECEDIT_SETTINGS": json.dumps({**server_settings, "presets": [instruction]}),
        "SPECEDIT_VIA": via,
        "SPECEDIT_PREVIEW": "0" if action == "direct" else "1",
        "SPECEDIT_FILE": str(target),
        "SPECEDIT_LINES": f"{first},{last}",
        "SPECEDIT_INSTRUCTION": instruction,
        "SPECEDIT_ACTION": action,
        "SPECEDIT_REPORT": str(report_path),
    }
    proc = subprocess.run(
        ["nvim", "--headless", "-n", "-i", "NONE", "-u", str(HERE / "nvim_e2e.lua")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"nvim exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    written = target.read_bytes()
    if action == "direct":  # no preview, no window: the rewrite itself
        assert report == {"windows": 1, "previews": 0}
        assert written.decode("utf-8") == expected
        return
    # The preview: a diff in a split, streamed in, showing exactly the rewrite, while the
    # buffer itself stays untouched until accepted.
    assert report["partials"] >= 1
    assert report["diff"] is True and report["windows"] == 2
    assert report["preview"] == expected.splitlines()
    assert report["unchanged_before"] is True
    assert report["windows_after"] == 1 and report["preview_gone"] is True
    if action == "accept":
        assert written.decode("utf-8") == expected
        # Nothing outside the selected lines changed.
        before, after = source.splitlines(keepends=True), expected.splitlines(keepends=True)
        tail = len(before) - last
        assert after[:first - 1] == before[:first - 1]
        assert after[len(after) - tail:] == before[len(before) - tail:]
    else:
        assert written == real.read_bytes()
