"""Child processes that never outlive us: each has a time limit and is killed at exit.

The language server leaves with os._exit (no interpreter teardown), so nothing else would
stop a `pip download` it started; cli.py calls kill_children() first.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass

_lock = threading.Lock()
_running: set[subprocess.Popen[str]] = set()


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


class ChildTimeout(Exception):
    """The child ran past its time limit and was killed."""


def run(cmd: Sequence[str], timeout: float) -> Finished:
    """Run `cmd` to the end, or kill it after `timeout` seconds (raising ChildTimeout)."""
    proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    with _lock:
        _running.add(proc)
    try:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise ChildTimeout(f"{cmd[0]} ran past its limit of {timeout:.0f} s") from None
        return Finished(proc.returncode, out, err)
    finally:
        with _lock:
            _running.discard(proc)
        if proc.poll() is None:  # interrupted (KeyboardInterrupt): never leave it behind
            proc.kill()


def kill_children() -> None:
    """Kill every child still running (called just before the process exits)."""
    with _lock:
        running = list(_running)
    for proc in running:
        with contextlib.suppress(OSError):
            proc.kill()
