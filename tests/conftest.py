"""Shared fixtures: tiny random-weight model folders, built once per test session, and the
engine as the reference the language-server tests compare against."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.lsp import TEST_SETTINGS, Reference
from tests.helpers.tiny_models import make_tiny_model_dir

# Real tiny models are never timed: the draft lengths, and so the pass counts the tests
# check, must not depend on how busy the machine is. Verified tokens are declared free (the
# regime of the one-pass guarantees); the draft-length tests pass their own curves, and
# tests of the calibration itself remove this (also inherited by the servers tests start).
os.environ.setdefault("SPECEDIT_PASS_COST", "1,0")
# A fixed thread count, as torch would choose it: `auto` samples the cores before every
# rewrite (50 ms each) and could change the count between a test's greedy reference and its
# speculative run. tests/engine/test_threads.py tests `auto` itself.
os.environ.setdefault("SPECEDIT_THREADS", str(max(1, min(len(os.sched_getaffinity(0)), 8))))


@pytest.fixture(scope="session")
def tiny_chat_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-chat"), "qwen2", chat=True)


@pytest.fixture(scope="session")
def tiny_base_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-base"), "gpt2", chat=False)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The language-server tests' model: its rewrites are arbitrary but deterministic
    (greedy), so each test computes what it expects by calling the engine directly."""
    return make_tiny_model_dir(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def reference(tiny_model_dir: Path) -> Reference:
    import engine

    return Reference(engine.load_model(str(tiny_model_dir), "cpu", "float32"))


@pytest.fixture(scope="session")
def server_settings(tiny_model_dir: Path) -> dict[str, Any]:
    return {"model": str(tiny_model_dir), **TEST_SETTINGS}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """In CI (SPECEDIT_REQUIRE_EDITORS=1) an editor test that would skip fails instead.

    Locally the Neovim and VS Code end-to-end tests skip when the editor is not installed;
    CI installs both, so a skip there would hide a broken install.
    """
    if os.environ.get("SPECEDIT_REQUIRE_EDITORS") != "1":
        return
    if item.get_closest_marker("editor") is None:
        return
    for mark in item.iter_markers("skipif"):
        if mark.args and mark.args[0]:
            pytest.fail("editor test required here but cannot run: "
                        + mark.kwargs.get("reason", ""), pytrace=False)
