"""Shared fixtures for the language-server tests: a tiny random model and its reference output.

The tiny model's rewrites are arbitrary but deterministic (greedy), so every test computes the
text it expects by calling the engine directly on the same model with the same inputs the
server should use, and compares that with what the server did.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # lsp_helpers
sys.path.insert(0, str(HERE.parent))  # tiny_models

from lsp_helpers import TEST_SETTINGS, Reference  # noqa: E402
from tiny_models import make_tiny_model_dir  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def reference(tiny_model_dir: Path) -> Reference:
    import engine

    return Reference(engine.load_model(str(tiny_model_dir), "cpu", "float32"))


@pytest.fixture(scope="session")
def server_settings(tiny_model_dir: Path) -> dict[str, Any]:
    return {"model": str(tiny_model_dir), **TEST_SETTINGS}
