"""`specedit bench-stream`: time to the first change and to the last, through a real server.

Starts the language server over stdio as an editor does, waits until the model is loaded,
opens the task's file and sends `specedit/rewrite` for all of it with a `partialResultToken`,
then times, on the client's clock from the moment the request is written, the first partial
result, the last one and the response. The model's load is not counted: an editor loads it
once, in the background, when it starts the server.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# Long enough for a big model's load on a CPU, short enough that a hung server ends the run.
LOAD_TIMEOUT = 1800.0
REWRITE_TIMEOUT = 1800.0
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StreamTiming:
    """One streamed rewrite, seen from the client."""

    first_partial_s: float  # request written -> first partial result read
    last_partial_s: float  # request written -> last partial result read
    response_s: float  # request written -> response read
    partials: int
    server_first_s: float  # the server's elapsedSeconds in the first partial result
    server_last_s: float  # ... and in the last (the decode's whole time)
    output_tokens: int
    forward_passes: int
    last_text_is_rewrite: bool  # the last partial text equals the region after the edit


class StdioServer:
    """The language server process, spoken to with JSON-RPC over its stdin and stdout."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        # (time read, message): timed by the reader thread as each message arrives.
        self.inbox: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self._next_id = 0
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if not line.strip():
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if length is None:
                continue
            message = json.loads(stream.read(length))
            self.inbox.put((time.perf_counter(), message))

    def send(self, message: dict[str, Any]) -> float:
        """Write one message; returns the time it was written."""
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()
        return time.perf_counter()

    def request(self, method: str, params: Any) -> tuple[int, float]:
        self._next_id += 1
        return self._next_id, self.send({"id": self._next_id, "method": method,
                                         "params": params})

    def notify(self, method: str, params: Any) -> None:
        self.send({"method": method, "params": params})

    def next_message(self, deadline: float) -> tuple[float, dict[str, Any]]:
        """The next message; the server's own requests are answered with null on the way."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError("the language server did not answer in time (or exited)")
            try:
                at, message = self.inbox.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if "method" in message and "id" in message:
                self.send({"id": message["id"], "result": None})
                continue
            return at, message

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.proc.wait(10)
        except Exception:  # noqa: BLE001 - it is going away either way
            self.proc.kill()
            self.proc.wait()


def _wait_ready(server: StdioServer) -> None:
    deadline = time.monotonic() + LOAD_TIMEOUT
    while True:
        _, message = server.next_message(deadline)
        if message.get("method") == "specedit/status":
            state = message["params"]["state"]
            if state == "ready":
                return
            if state == "error":
                raise RuntimeError(f"the model did not load: {message['params'].get('message')}")


def _region_after(text: str, edits: list[dict[str, Any]]) -> str:
    """The whole document after the server's whole-line edits (lines as LSP splits them)."""
    lines = text.splitlines(keepends=True)
    for edit in sorted(edits, key=lambda e: e["range"]["start"]["line"], reverse=True):
        start, end = edit["range"]["start"], edit["range"]["end"]
        # A nonzero character: the end of a last line without a line ending.
        end_line = end["line"] + 1 if end["character"] else end["line"]
        lines[start["line"]:end_line] = [edit["newText"]]
    return "".join(lines)


def measure(code: str, instruction: str, settings: dict[str, Any], *, language: str = "",
            runs: int = 1, command: list[str] | None = None) -> list[StreamTiming]:
    """Stream the rewrite of the whole of `code` `runs` times through one server."""
    command = command or [sys.executable, "-m", "lsp_server", "--stdio"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    server = StdioServer(command, env)
    try:
        server.request("initialize", {"processId": os.getpid(), "rootUri": None,
                                      "capabilities": {}, "initializationOptions": settings})
        server.notify("initialized", {})
        _wait_ready(server)
        lines = code.splitlines(keepends=True)
        end = ({"line": len(lines), "character": 0} if code.endswith("\n")
               else {"line": len(lines) - 1, "character": len(lines[-1].encode("utf-16-le")) // 2})
        timings = []
        for run in range(runs):
            uri = f"file:///specedit-bench-stream/{run}/example"
            server.notify("textDocument/didOpen", {"textDocument": {
                "uri": uri, "languageId": language, "version": 1, "text": code}})
            timings.append(_one(server, uri, code, instruction, end, f"bench-stream-{run}"))
        return timings
    finally:
        server.close()


def _one(server: StdioServer, uri: str, code: str, instruction: str, end: dict[str, int],
         token: str) -> StreamTiming:
    request_id, sent = server.request("specedit/rewrite", {
        "textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": end},
        "instruction": instruction, "partialResultToken": token})
    deadline = time.monotonic() + REWRITE_TIMEOUT
    partials: list[tuple[float, dict[str, Any]]] = []
    while True:
        at, message = server.next_message(deadline)
        if message.get("method") == "$/progress" and message["params"]["token"] == token:
            partials.append((at, message["params"]["value"]))
        elif message.get("id") == request_id:
            break
    if "error" in message:
        raise RuntimeError(f"specedit/rewrite failed: {message['error'].get('message')}")
    if not partials:
        raise RuntimeError("no partial result arrived")
    result = message["result"]
    edit = result["edit"]
    edits = next((c["edits"] for c in edit.get("documentChanges") or []
                  if c["textDocument"]["uri"] == uri), None)
    if edits is None:
        edits = (edit.get("changes") or {}).get(uri, [])
    first, last = partials[0], partials[-1]
    return StreamTiming(
        first_partial_s=first[0] - sent, last_partial_s=last[0] - sent,
        response_s=at - sent, partials=len(partials),
        server_first_s=first[1]["elapsedSeconds"], server_last_s=last[1]["elapsedSeconds"],
        output_tokens=result["stats"]["outputTokens"],
        forward_passes=result["stats"]["forwardPasses"],
        last_text_is_rewrite=_region_after(code, edits) == last[1]["text"])


def markdown(timings: list[StreamTiming]) -> str:
    rows = ["| run | first change (s) | last change (s) | response (s) | partial results | "
            "server: first / last (s) | output tokens | forward passes | last text = rewrite |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, t in enumerate(timings, start=1):
        rows.append(f"| {i} | {t.first_partial_s:.2f} | {t.last_partial_s:.2f} | "
                    f"{t.response_s:.2f} | {t.partials} | {t.server_first_s:.2f} / "
                    f"{t.server_last_s:.2f} | {t.output_tokens} | {t.forward_passes} | "
                    f"{'yes' if t.last_text_is_rewrite else 'NO'} |")
    return "\n".join(rows) + "\n"
