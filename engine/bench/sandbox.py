"""Run a benchmark's untrusted test code against a rewrite: its own interpreter, a temp dir, a
time limit, and no network.

What "no network" means here, and what it does not:
- The environment is built from scratch: no proxy variables (and no_proxy=*), no inherited
  PYTHON* variables, HOME is the temp dir; `-s` drops the user's site-packages.
- PYTHONPATH holds only a `sitecustomize.py` (written beside the code, in the temp dir) that
  the interpreter imports at start-up, before the code runs. It makes creating an IPv4/IPv6
  socket and resolving a host name raise PermissionError, so test code that reaches for the
  network fails at once instead of hanging or reaching out. Local (AF_UNIX) sockets still
  work (multiprocessing and asyncio need them). Python subprocesses the tests start inherit
  the environment, and so the guard.
- This stops accidental network use by benchmark tests; it is not a security boundary
  against hostile code (ctypes or a non-Python child can go around it). Run untrusted
  benchmarks in a container without a network for that.
- The whole process group is killed at the time limit, children included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NETWORK_BLOCKED = "network access is disabled in the specedit test sandbox"

_GUARD = f'''"""Written by specedit's test sandbox: no network for the code under test."""
import errno as _errno
import socket as _socket

_MESSAGE = {NETWORK_BLOCKED!r}
_INET = (_socket.AF_INET, _socket.AF_INET6)


def _refuse(*_args, **_kwargs):
    raise PermissionError(_errno.EACCES, _MESSAGE)


class _GuardedSocket(_socket.socket):
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is None and (family == -1 or family in _INET):
            _refuse()
        super().__init__(family, type, proto, fileno)


_socket.socket = _GuardedSocket
for _name in ("create_connection", "getaddrinfo", "gethostbyname", "gethostbyname_ex",
              "gethostbyaddr", "create_server"):
    setattr(_socket, _name, _refuse)
'''

# Seconds a problem's tests may run; a test importing torch needs a few on a busy machine.
DEFAULT_TEST_TIMEOUT = 30.0
# How much of the tests' stderr a result keeps (the end holds the exception).
STDERR_TAIL = 2000


@dataclass
class TestOutcome:
    passed: bool
    timed_out: bool
    returncode: int | None  # None when killed at the time limit
    stderr: str  # the last STDERR_TAIL characters
    seconds: float


def sandbox_env(tmp: Path) -> dict[str, str]:
    """A fresh environment for the test interpreter (see the module docstring)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(tmp / "_sandbox"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",  # a test importing torch or numpy must not take every core
        "http_proxy": "", "https_proxy": "", "all_proxy": "", "no_proxy": "*",
        "HTTP_PROXY": "", "HTTPS_PROXY": "", "ALL_PROXY": "", "NO_PROXY": "*",
        # Where a machine keeps native libraries (CUDA's, say) that numpy or torch load.
        **({"LD_LIBRARY_PATH": os.environ["LD_LIBRARY_PATH"]}
           if os.environ.get("LD_LIBRARY_PATH") else {}),
    }


def run_sandboxed(code: str, tests: str, timeout: float) -> TestOutcome:
    """Run `code` followed by `tests` as one script; passed when it exits with status 0."""
    with tempfile.TemporaryDirectory(prefix="specedit-tests-") as name:
        tmp = Path(name)
        (tmp / "_sandbox").mkdir()
        (tmp / "_sandbox" / "sitecustomize.py").write_text(_GUARD)
        script = tmp / "candidate.py"
        script.write_text(code + "\n\n" + tests + "\n")
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-s", str(script)], cwd=tmp,
                                env=sandbox_env(tmp), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            _, err = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # its own session: children too
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                _, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # a child left the group and holds stderr open
                proc.stderr.close()  # type: ignore[union-attr]
                proc.wait()
                err = b""
            timed_out = True
        seconds = time.perf_counter() - started
    stderr = err.decode("utf-8", "replace")[-STDERR_TAIL:]
    return TestOutcome(passed=not timed_out and proc.returncode == 0, timed_out=timed_out,
                       returncode=None if timed_out else proc.returncode, stderr=stderr,
                       seconds=seconds)
