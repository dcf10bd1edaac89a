"""Shared fixtures: tiny random-weight model folders, built once per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import make_tiny_model_dir  # noqa: E402


@pytest.fixture(scope="session")
def tiny_chat_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-chat"), "qwen2", chat=True)


@pytest.fixture(scope="session")
def tiny_base_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-base"), "gpt2", chat=False)


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
