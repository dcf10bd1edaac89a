"""A real `specedit api` process on a free loopback port, for the tests that talk to one."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ApiServer:
    base_url: str  # http://127.0.0.1:PORT
    model: str
    process: subprocess.Popen[bytes]

    @property
    def v1(self) -> str:
        return f"{self.base_url}/v1"

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.base_url}/health", timeout=30).json()

    def wait_for(self, predicate: Any, what: str, timeout: float = 120) -> dict[str, Any]:
        """Poll /health until `predicate(health)` holds (a hang guard, not a timing check)."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            if predicate(health):
                return health
            assert time.monotonic() < deadline, f"gave up waiting for {what}: {health}"
            time.sleep(0.05)


@contextlib.contextmanager
def running_api_server(model_dir: Path, log: Path, env: dict[str, str] | None = None,
                       args: Sequence[str] = ()) -> Iterator[ApiServer]:
    """`python -m engine.cli api` on the tiny model, float32 on the CPU, until the block ends."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "api", "--model", str(model_dir),
             "--device", "cpu", "--dtype", "float32", "--port", str(port), *args],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    server = ApiServer(f"http://127.0.0.1:{port}", str(model_dir), process)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, f"the server exited: {log.read_text()}"
            try:
                if server.health()["status"] == "ok":
                    break
            except (httpx.HTTPError, json.JSONDecodeError):
                pass
            assert time.monotonic() < deadline, f"the server did not start: {log.read_text()}"
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
