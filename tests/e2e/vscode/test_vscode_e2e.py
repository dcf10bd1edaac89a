"""A real editor end to end: the VS Code extension in code-server, driven by headless Chromium.

The test itself is JavaScript (rewrite.e2e.test.mjs, node's test runner, playwright-core;
its header says what it does); this wrapper runs it once under pytest so that the README's
test command covers it. It skips when the harness is not installed (`bash .ci/vscode-e2e.sh
--install-only` installs it; CI sets SPECEDIT_REQUIRE=editors,..., which turns that skip into
a failure: tests/conftest.py). Screenshots and logs go to artifacts/vscode-e2e/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
EXTENSION = REPO / "vscode-extension"
VSIX = EXTENSION / "speculative-edits.vsix"
CODE_SERVER = HERE / "node_modules" / "code-server" / "out" / "node" / "entry.js"
PLAYWRIGHT = HERE / "node_modules" / "playwright-core" / "package.json"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
INSTALL = "run `bash .ci/vscode-e2e.sh --install-only`"

pytestmark = [
    pytest.mark.editor,
    pytest.mark.skipif(shutil.which("node") is None, reason=f"needs Node 20: {INSTALL}"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"needs Chromium at {CHROMIUM}: {INSTALL}"),
    pytest.mark.skipif(not (CODE_SERVER.exists() and PLAYWRIGHT.exists()),
                       reason=f"needs code-server and playwright-core: {INSTALL}"),
    pytest.mark.skipif(not (VSIX.exists() or (EXTENSION / "node_modules").exists()),
                       reason=f"needs the extension built (vscode-extension/): {INSTALL}"),
]


def vsix_is_stale() -> bool:
    if not VSIX.exists():
        return True
    built = VSIX.stat().st_mtime
    sources = [*EXTENSION.joinpath("src").rglob("*.ts"), EXTENSION / "package.json",
               EXTENSION / "package-lock.json", EXTENSION / "README.md"]
    return any(p.stat().st_mtime > built for p in sources if p.exists())


def test_vscode_extension_rewrites_and_cancels_in_code_server(tmp_path: Path) -> None:
    if vsix_is_stale():  # test what the sources say, not an old build
        subprocess.run(["npm", "run", "--silent", "package"], cwd=EXTENSION, check=True,
                       stdout=subprocess.DEVNULL, timeout=300)
    env = {
        **os.environ,
        "SPECEDIT_E2E_PYTHON": sys.executable,
        "SPECEDIT_E2E_VSIX": str(VSIX),
        "SPECEDIT_E2E_ARTIFACTS": os.environ.get("SPECEDIT_E2E_ARTIFACTS",
                                                 str(REPO / "artifacts" / "vscode-e2e")),
    }
    # Once: a failure is reported as it happened, never hidden by a second run.
    proc = subprocess.run(
        ["node", "--test", "--test-concurrency=1", "--test-timeout=900000",
         "rewrite.e2e.test.mjs"],
        cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=1200,
    )
    print(proc.stdout)  # shown by pytest on failure (and with -s)
    assert proc.returncode == 0, "the VS Code end-to-end test failed:\n" + proc.stdout[-8000:]
