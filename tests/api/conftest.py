"""A real `specedit api` process on a free loopback port, driven by the official client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

API_KEY = "test-key-not-secret"
KEY_ENV = "SPECEDIT_TEST_API_KEY"
MAX_QUEUE = 1
MAX_BODY = 64 * 1024


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


@pytest.fixture(scope="session")
def api_server(tiny_chat_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[ApiServer]:
    port = free_port()
    log = tmp_path_factory.mktemp("api") / "server.log"
    env = {**os.environ, KEY_ENV: API_KEY}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "api", "--model", str(tiny_chat_model_dir),
             "--device", "cpu", "--dtype", "float32", "--port", str(port),
             "--api-key-env", KEY_ENV, "--max-queue", str(MAX_QUEUE),
             "--max-body-bytes", str(MAX_BODY)],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    server = ApiServer(f"http://127.0.0.1:{port}", str(tiny_chat_model_dir), process)
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
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    assert process.returncode is not None
