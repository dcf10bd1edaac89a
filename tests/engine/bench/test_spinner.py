"""The busy-core spinner of the benchmarks ends when the benchmark that started it is killed:
a killed benchmark runs no cleanup, and a spinner left behind would load every later run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.bench.servers import spin_command


def state(pid: int) -> str | None:
    """The process's state letter (Z: exited, not yet reaped), None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0]


def test_the_spinner_spins_while_its_parent_lives_and_ends_when_it_is_killed() -> None:
    code = ("import subprocess, sys, time\n"
            f"p = subprocess.Popen({spin_command()!r})\n"
            "print(p.pid, flush=True)\n"
            "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        time.sleep(1.0)
        assert state(child) == "R"  # busy: running, not sleeping
        os.kill(parent.pid, signal.SIGKILL)  # no cleanup runs in the parent
        parent.wait()
        deadline = time.monotonic() + 60  # a liveness bound, not a timing claim
        while state(child) not in (None, "Z") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert state(child) in (None, "Z")
    finally:
        parent.stdout.close()
        if state(child) not in (None, "Z"):
            os.kill(child, signal.SIGKILL)
