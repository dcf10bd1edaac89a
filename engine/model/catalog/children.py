"""Child processes that never outlive us: each has a time limit and is killed at exit.

The language server leaves with os._exit (no interpreter teardown), so nothing else would
stop a `pip download` it started; cli.py calls kill_children() first. A server killed
outright (SIGKILL, the OOM killer) runs no code at all: on Linux each child asks the kernel
for SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG), set between fork and exec.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
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


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # no libc symbol (a static or unusual libc)
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


# Looked up once, before any fork: the child only calls it.
_prctl = _load_prctl()


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGKILL when this process dies (Linux; None
    elsewhere). The kernel sends it when the *thread* that forked the child ends, so the
    thread that calls `run` must outlive the child: it does, since `run` waits for it."""
    if _prctl is None:
        return None
    prctl = _prctl
    parent = os.getpid()

    def preexec() -> None:  # in the child, between fork and exec: no locks, no imports
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def run(cmd: Sequence[str], timeout: float) -> Finished:
    """Run `cmd` to the end, or kill it after `timeout` seconds (raising ChildTimeout)."""
    proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent())
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
