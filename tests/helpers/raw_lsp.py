"""A real server process spoken to in raw bytes over stdio, for framing and lifecycle tests.

pytest-lsp's client only sends well-formed frames and owns the process's lifetime; these
tests need to send anything and to watch exit codes, timing and stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SERVER = [sys.executable, "-m", "lsp_server", "--stdio"]


def frame(message: Any) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class RawServer:
    """The server process; a thread reads its frames, answering its requests like an editor."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(SERVER, cwd=REPO, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.settings = settings or {}
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.stderr = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        self._next_id = 1000

    # -- bytes ------------------------------------------------------------------------------

    def send_bytes(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_bytes(frame({"jsonrpc": "2.0", **message}))

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            assert length is not None, "a frame without Content-Length from the server"
            message = json.loads(stream.read(length))
            self._answer(message)
            self.messages.put(message)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := self.proc.stderr.read1(65536):
            self.stderr += chunk

    def _answer(self, message: dict[str, Any]) -> None:
        """Server-to-client requests get what an editor would answer."""
        if "id" not in message or "method" not in message:
            return
        method = message["method"]
        result: Any = None
        if method == "workspace/configuration":
            result = [self.settings]
        elif method == "workspace/applyEdit":
            result = {"applied": True}
        with contextlib.suppress(BrokenPipeError, ValueError):  # the server has gone
            self.send({"id": message["id"], "result": result})

    # -- messages ---------------------------------------------------------------------------

    def request(self, method: str, params: Any = None) -> int:
        self._next_id += 1
        self.send({"id": self._next_id, "method": method, "params": params})
        return self._next_id

    def wait_for(self, predicate: Any, timeout: float = 60.0, what: str = "") -> dict[str, Any]:
        for message in self.seen:
            if predicate(message):
                return message
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                message = self.messages.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(f"no {what or 'message'} within {timeout:.0f} s; "
                                     f"stderr: {self.stderr[-2000:]!r}") from None
            self.seen.append(message)
            if predicate(message):
                return message

    def response(self, msg_id: Any, timeout: float = 60.0) -> dict[str, Any]:
        return self.wait_for(lambda m: m.get("id") == msg_id and "method" not in m, timeout,
                             f"response to {msg_id!r}")

    def responses(self, msg_id: Any) -> list[dict[str, Any]]:
        """Every response with this id received so far (to check there is exactly one)."""
        while True:
            try:
                self.seen.append(self.messages.get_nowait())
            except queue.Empty:
                break
        return [m for m in self.seen if m.get("id") == msg_id and "method" not in m]

    def call(self, method: str, params: Any = None, timeout: float = 60.0) -> dict[str, Any]:
        return self.response(self.request(method, params), timeout)

    def initialize(self, capabilities: dict[str, Any] | None = None,
                   wait_ready: bool = True) -> None:
        reply = self.call("initialize", {"processId": None, "rootUri": None,
                                         "capabilities": capabilities or {},
                                         "initializationOptions": self.settings})
        assert "capabilities" in reply["result"], reply
        self.send({"method": "initialized", "params": {}})
        if wait_ready:
            self.wait_for(lambda m: m.get("method") == "specedit/status"
                          and m["params"]["state"] == "ready", what="specedit/status ready")

    def open(self, uri: str, text: str, version: int = 1) -> None:
        self.send({"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": version, "text": text}}})

    def wait_exit(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._stderr_reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
