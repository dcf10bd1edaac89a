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


# -- skips a machine must not have -----------------------------------------------------------
#
# A test that needs something a machine may lack says so with `@pytest.mark.needs(NAME)`
# (the end-to-end tests' `editor` marker means needs("editors")) and skips without it, with
# the reason. Where SPECEDIT_REQUIRE lists NAME (.ci/run lists what CI's machines have), that
# skip is a failure instead: a skip there would hide a broken install or a lost code path.
# SPECEDIT_REQUIRE_EDITORS=1 is the same as listing "editors".
NEEDS = {
    "editors": "Neovim and the VS Code harness (code-server, Chromium, the built extension)",
    "c-compiler": "a C compiler for the native kernels (engine/model/kernels)",
    "avx2": "a CPU and compiler with AVX2+FMA+F16C (the kernels' vector path)",
    "openmp": "OpenMP in the C compiler (the kernels' threads)",
    "onednn": "a torch build with oneDNN (packed linear layers)",
    "two-cpus": "Linux and at least two CPUs",
    "pidfd": "Linux 5.3+ (pidfd_open), to wait for a process that is not our child",
}


def required() -> set[str]:
    """What this machine must have: SPECEDIT_REQUIRE, comma-separated."""
    names = {n.strip() for n in os.environ.get("SPECEDIT_REQUIRE", "").split(",") if n.strip()}
    if os.environ.get("SPECEDIT_REQUIRE_EDITORS") == "1":
        names.add("editors")
    unknown = names - NEEDS.keys()
    if unknown:
        raise pytest.UsageError(f"SPECEDIT_REQUIRE names {sorted(unknown)}; known: "
                                f"{', '.join(NEEDS)}")
    return names


def needs_of(item: pytest.Item) -> set[str]:
    found = {name for mark in item.iter_markers("needs") for name in mark.args}
    if item.get_closest_marker("editor") is not None:
        found.add("editors")
    unknown = found - NEEDS.keys()
    assert not unknown, f"{item.nodeid}: needs {sorted(unknown)}, not in conftest.NEEDS"
    return found


_REQUIRED = pytest.StashKey[set[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_REQUIRED] = required()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """A skip of a test that needs what SPECEDIT_REQUIRE lists becomes a failure, whether it
    came from a skipif mark, a fixture or the test itself (pytest.skip)."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    missing = needs_of(item) & item.config.stash[_REQUIRED]
    if not missing:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"skipped, but SPECEDIT_REQUIRE says this machine has "
                       f"{', '.join(sorted(missing))}: {reason}")
