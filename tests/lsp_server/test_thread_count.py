"""The server's rewrites do not depend on SPECEDIT_THREADS: the same edit on one thread and
on two (the engine's own test, tests/engine/model/test_threads.py, also changes the count
in the middle of a rewrite)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.helpers.lsp import SAMPLE, TEST_SETTINGS
from tests.helpers.raw_lsp import REPO, RawServer
from tests.helpers.tiny_models import make_tiny_model_dir

URI = "file:///tmp/threads.py"
AREA = {"start": {"line": 7, "character": 0}, "end": {"line": 10, "character": 0}}


def rewrite_with_threads(model_dir: Path, threads: str) -> dict[str, Any]:
    settings = {**TEST_SETTINGS, "model": str(model_dir), "maxNewTokens": 60}
    env = {**os.environ, "PYTHONPATH": str(REPO), "SPECEDIT_THREADS": threads}
    server = RawServer(settings, env=env)
    try:
        server.initialize()
        server.open(URI, SAMPLE)
        reply = server.call("specedit/rewrite", {"uri": URI, "range": AREA,
                                                 "instruction": "Add type hints"})
        assert "result" in reply, reply
        return reply["result"]
    finally:
        server.kill()


def test_one_thread_and_two_give_the_same_edit(tmp_path: Path) -> None:
    # Wider than the tests' usual 64, so that torch splits its matmuls across threads.
    model_dir = make_tiny_model_dir(tmp_path / "wide", "qwen2", hidden=256)
    one = rewrite_with_threads(model_dir, "1")
    two = rewrite_with_threads(model_dir, "2")
    assert one["edit"] == two["edit"]
    assert one["edit"]["changes"][URI], "the model left the selection unchanged: no evidence"
    assert one["stats"]["outputTokens"] == two["stats"]["outputTokens"] >= 10
