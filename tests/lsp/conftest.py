"""Shared fixtures for the language-server tests: a tiny random model and its reference output.

The tiny model's rewrites are arbitrary but deterministic (greedy), so every test computes the
text it expects by calling the engine directly on the same model with the same inputs the
server should use, and compares that with what the server did.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # lsp_helpers
sys.path.insert(0, str(HERE.parent))  # tiny_models

from tiny_models import make_tiny_model_dir  # noqa: E402

# A real file's worth of Python: the selection in most tests is `area` (lines 9-11).
SAMPLE = '''\
"""Shapes."""

import math

PI = math.pi


def area(radius):
    r2 = radius * radius
    return PI * r2


def perimeter(radius):
    return 2 * PI * radius


if __name__ == "__main__":
    print(area(2), perimeter(2))
'''

# Few tokens and little context keep each rewrite of the tiny model well under a second.
TEST_SETTINGS: dict[str, Any] = {
    "device": "cpu",
    "dtype": "float32",
    "method": "speculative",
    "maxNewTokens": 16,
    "contextLines": 3,
    "presets": ["Add docstrings", "Add type hints"],
}


@dataclass
class Reference:
    """The engine, called directly: what the server must produce."""

    loaded: Any

    def rewrite(self, text: str, first: int, end: int, instruction: str,
                settings: dict[str, Any] = TEST_SETTINGS) -> Any:
        import engine

        lines = text.splitlines(keepends=True)
        ctx = settings["contextLines"]
        return engine.rewrite(
            self.loaded, "".join(lines[first:end]), instruction, language="python",
            context_before="".join(lines[max(0, first - ctx):first]),
            context_after="".join(lines[end:end + ctx]),
            method=settings["method"], max_new_tokens=settings["maxNewTokens"] or None)

    def document_after(self, text: str, first: int, end: int, instruction: str,
                       settings: dict[str, Any] = TEST_SETTINGS) -> str:
        """The whole document once lines [first, end) are replaced by the rewrite."""
        lines = text.splitlines(keepends=True)
        new = self.rewrite(text, first, end, instruction, settings).text
        if new and not new.endswith(("\n", "\r")):
            new += "\n"  # the server keeps the region's final line ending
        return "".join(lines[:first]) + new + "".join(lines[end:])


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
