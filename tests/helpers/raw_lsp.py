"""LSP's base protocol by hand, in one place: the only test code that writes or reads
`Content-Length` frames itself (tests/helpers/lsp.py drives pytest-lsp's client instead).

- `frame` and `frame_body` make frames, well-formed or, for the tests that send malformed
  ones on purpose, with any length, line end or header;
- `FrameReader` reads the server's frames from a pipe or a socket;
- `RawServer` is a real server process spoken to in raw bytes over stdio, for framing and
  lifecycle tests: pytest-lsp's client only sends well-formed frames and owns the process's
  lifetime, and these tests need to send anything and to watch exit codes and stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SERVER = [sys.executable, "-m", "lsp_server", "--stdio"]


def frame(message: Any) -> bytes:
    """A well-formed frame around `message` as JSON."""
    return frame_body(json.dumps(message).encode())


def frame_body(body: bytes, length: int | bytes | None = None, *, eol: bytes = b"\r\n",
               headers: Sequence[tuple[bytes, int | bytes]] | None = None) -> bytes:
    """A frame around raw bytes: `Content-Length: len(body)` unless `length` (any bytes, for
    a malformed one) or `headers` (the whole header block) says otherwise, each header line
    ending with `eol`."""
    if headers is None:
        headers = [(b"Content-Length", len(body) if length is None else length)]
    block = b"".join(name + b": " + (value if isinstance(value, bytes) else b"%d" % value) + eol
                     for name, value in headers)
    return block + eol + body


_HEADER_END = re.compile(rb"\r?\n\r?\n")


class FrameReader:
    """The messages of a byte stream (a pipe's read1, a socket's recv), one frame at a time.

    Header names are case-insensitive and lines may end with \\n: what the server accepts,
    the tests accept from it too (the server itself always writes \\r\\n)."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self._buffer = b""

    def _more(self) -> bool:
        chunk = self._read(65536)
        self._buffer += chunk
        return bool(chunk)

    def next(self) -> Any:
        """The next message, parsed; None once the stream has ended."""
        while (end := _HEADER_END.search(self._buffer)) is None:
            if not self._more():
                return None
        fields = dict(line.split(b":", 1) for line in
                      re.split(rb"\r?\n", self._buffer[:end.start()]) if b":" in line)
        lengths = [v for k, v in fields.items() if k.strip().lower() == b"content-length"]
        assert lengths, f"a frame without Content-Length: {self._buffer[:end.start()]!r}"
        length = int(lengths[0])
        self._buffer = self._buffer[end.end():]
        while len(self._buffer) < length:
            assert self._more(), "the stream ended inside a frame"
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return json.loads(body)


class RawServer:
    """The server process; a thread reads its frames, answering its requests like an editor."""

    def __init__(self, settings: dict[str, Any] | None = None, *,
                 command: Sequence[str] = SERVER, env: Mapping[str, str] | None = None,
                 cwd: Path = REPO) -> None:
        """`env`: the whole environment (default: ours, with the repository on PYTHONPATH)."""
        env = dict(env) if env is not None else {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(list(command), cwd=cwd, env=env, stdin=subprocess.PIPE,
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
        assert self.proc.stdout is not None
        reader = FrameReader(self.proc.stdout.read1)
        while (message := reader.next()) is not None:
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
