"""The test sandbox: a temp dir, a clean environment, no IP network, a time limit."""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from engine.bench.sandbox import NETWORK_BLOCKED, run_sandboxed


def _report(expression: str) -> str:
    """Code that fails on purpose, leaving `expression`'s value as its last stderr line."""
    return f"import os, socket, sys\nsys.stderr.write(repr({expression}))\nraise SystemExit(3)\n"


def test_runs_in_a_temp_dir_that_is_removed_afterwards() -> None:
    outcome = run_sandboxed(_report("os.getcwd()"), "", 10)
    assert not outcome.passed and outcome.returncode == 3 and not outcome.timed_out
    cwd = eval(outcome.stderr)  # noqa: S307 - our own repr
    assert cwd.startswith(tempfile.gettempdir()) and cwd != os.getcwd()
    assert not os.path.exists(cwd)


def test_environment_has_no_proxies_and_nothing_inherited(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("https_proxy", "http://proxy.invalid:3128")
    monkeypatch.setenv("SPECEDIT_SECRET", "x")
    env = eval(run_sandboxed(_report("dict(os.environ)"), "", 10).stderr)  # noqa: S307
    assert env["https_proxy"] == "" and env["HTTPS_PROXY"] == "" and env["no_proxy"] == "*"
    assert "SPECEDIT_SECRET" not in env


def test_ip_sockets_and_name_lookups_fail_local_sockets_work() -> None:
    refused = ("socket.socket()", "socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)",
               "socket.getaddrinfo('example.com', 80)",
               "socket.create_connection(('127.0.0.1', 9))")
    for call in refused:
        outcome = run_sandboxed(f"import socket\n{call}\n", "", 10)
        assert not outcome.passed and NETWORK_BLOCKED in outcome.stderr, call
    ok = "import socket\na, b = socket.socketpair()\na.sendall(b'x')\nassert b.recv(1) == b'x'\n"
    assert run_sandboxed(ok, "", 10).passed
    # A Python child process inherits the guard.
    child = ("import subprocess, sys\nr = subprocess.run([sys.executable, '-c', "
             "'import socket; socket.socket()'], capture_output=True, text=True)\n"
             f"assert {NETWORK_BLOCKED!r} in r.stderr, r.stderr\n")
    assert run_sandboxed(child, "", 20).passed


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie is dead, only not yet reaped


def test_time_limit_kills_the_tests_and_their_children() -> None:
    code = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            "sys.stderr.write(f'child {child.pid}\\n')\nsys.stderr.flush()\n"
            "time.sleep(600)\n")
    outcome = run_sandboxed(code, "", 5)  # time enough for the child to start on a busy machine
    assert outcome.timed_out and not outcome.passed and outcome.returncode is None
    match = re.search(r"child (\d+)", outcome.stderr)
    assert match, outcome.stderr
    pid = int(match.group(1))
    for _ in range(50):  # SIGKILL is delivered asynchronously
        if not _running(pid):
            break
        time.sleep(0.1)
    assert not _running(pid), "the tests' child outlived the time limit"
