"""Fuzz: malformed frames, bodies and params thrown at a real server process over stdio.

A seeded generator (the same inputs every run, bounded in count) makes each input; after
each one a probe request must be answered, so the server is never deaf, and every input that
expects an answer got it: an error with id null for what cannot be read, exactly one
response for every request with an id. At the end the server still makes a valid rewrite,
the one the engine makes when called directly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lsp_server.actions import COMMAND
from tests.helpers.lsp import SAMPLE, Reference, apply_text_edits, edits_for
from tests.helpers.raw_lsp import RawServer, frame, frame_body

SEED = 20261123
INPUTS = 150
URI = "file:///tmp/fuzz.py"
# Bytes that complete a body whose Content-Length overstates it, so the probe after it is read.
FILLER = b" " * 4096
FIELDS = ["uri", "range", "start", "end", "line", "character", "textDocument", "instruction",
          "command", "arguments", "data", "text", "version", "contentChanges", "context",
          "diagnostics", "title", "workDoneToken", "only", "languageId"]
URIS = [URI, "file:///nonexistent/x.py", "untitled:1", "", "not a uri", "file:///tmp/%ZZ"]
REQUESTS = ["textDocument/codeAction", "codeAction/resolve", "workspace/executeCommand",
            "specedit/rewrite", "textDocument/hover", "workspace/symbol"]
NOTIFICATIONS = ["textDocument/didOpen", "textDocument/didChange", "textDocument/didClose",
                 "$/cancelRequest", "window/workDoneProgress/cancel", "$/setTrace",
                 "textDocument/didSave", "$/unknown"]


@dataclass
class Input:
    kind: str
    data: bytes
    msg_id: int | None = None  # a request that must get exactly one response
    null_error: bool = False  # must be answered with an error whose id is null


class Fuzzer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_id = 0

    def value(self, depth: int = 0) -> Any:
        r = self.rng
        kinds = ["int", "str", "bool", "null", "float", "uri"] + (["list", "dict"] * 2
                                                                   if depth < 3 else [])
        kind = r.choice(kinds)
        if kind == "int":
            return r.choice([0, 1, -1, 7, 2**31, -(2**31) - 1, 2**70, r.randint(-50, 50)])
        if kind == "str":
            return r.choice(["", "x", "Add type hints", "\u2028", "\x00", "😀" * 3, "a" * 300])
        if kind == "bool":
            return r.random() < 0.5
        if kind == "null":
            return None
        if kind == "float":
            return r.choice([0.5, -1e300, 1e-9])
        if kind == "uri":
            return r.choice(URIS)
        if kind == "list":
            return [self.value(depth + 1) for _ in range(r.randint(0, 3))]
        return {r.choice(FIELDS): self.value(depth + 1) for _ in range(r.randint(0, 4))}

    def position(self) -> Any:
        if self.rng.random() < 0.7:
            return {"line": self.rng.randint(-2, 30), "character": self.rng.randint(-2, 100)}
        return self.value(2)

    def params(self, method: str) -> Any:
        """Params shaped like the method's, with random parts: they reach deeper checks."""
        r = self.rng
        if r.random() < 0.25:
            return self.value()
        selection = {"start": self.position(), "end": self.position()}
        if method == "workspace/executeCommand":
            argument = {"uri": r.choice(URIS), "range": selection,
                        "instruction": r.choice([None, "", "Add type hints", 5])}
            return {"command": r.choice([COMMAND, COMMAND, "nope", 3]),
                    "arguments": r.choice([[argument], [], [1, 2], None, argument])}
        if method == "codeAction/resolve":
            return {"title": r.choice(["t", None, 3]),
                    "data": r.choice([None, self.value(), {"uri": URI, "range": selection}])}
        return {"textDocument": {"uri": r.choice(URIS), "version": self.value(2)},
                "range": selection, "position": self.position(),
                "uri": r.choice(URIS), "instruction": r.choice(["Add type hints", "", None]),
                "context": {"diagnostics": r.choice([[], None, [1]])},
                "contentChanges": [{"range": selection, "text": self.value(2)}],
                "query": self.value(2)}

    def request_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def make(self) -> Input:
        r = self.rng
        kind = r.choice(["junk", "bad length", "short length", "long length",
                         "long length garbage", "bad json", "not an object", "bad envelope",
                         "params", "params", "params", "notification", "notification"])
        if kind == "junk":
            junk = bytes(r.randrange(256) for _ in range(r.randint(1, 200)))
            return Input(kind, b"#" + junk.replace(b"\n", b"."), null_error=True)
        if kind == "bad length":
            value = r.choice([b"abc", b"-5", b"1e3", b"", b"0x10", b"9" * 30, b"1000000000000"])
            return Input(kind, frame_body(b'{"x": 1}', value), null_error=True)
        if kind in ("short length", "long length", "long length garbage"):
            msg_id = self.request_id()
            body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "textDocument/hover",
                               "params": self.params("textDocument/hover")}).encode()
            if kind == "long length garbage":
                body = body[:-r.randint(1, 10)]  # not JSON any more
            length = (r.randint(1, len(body) - 1) if kind == "short length"
                      else len(body) + r.randint(1, 3000))
            expects_answer = kind == "long length"
            # The garbage body is completed by filler, as a client's later bytes would.
            filler = FILLER if kind == "long length garbage" else b""
            return Input(kind, frame_body(body, length) + filler,
                         msg_id=msg_id if expects_answer else None,
                         null_error=not expects_answer)
        if kind == "bad json":
            body = b"{" + bytes(r.randrange(256) for _ in range(r.randint(0, 100)))
            return Input(kind, frame_body(body), null_error=True)
        if kind == "not an object":
            body = json.dumps(r.choice([[], [1], 5, "s", None, True, [{"jsonrpc": "2.0"}]]))
            return Input(kind, frame_body(body.encode()), null_error=True)
        if kind == "bad envelope":
            msg_id = self.request_id()
            message = r.choice([
                {"id": msg_id, "method": "textDocument/hover"},  # no jsonrpc
                {"jsonrpc": "2.0", "id": msg_id, "method": 5},
                {"jsonrpc": "2.0", "id": msg_id, "method": "textDocument/codeAction",
                 "params": "text"},
                {"jsonrpc": "2.0", "id": msg_id},  # no method: answered with id null
            ])
            if "method" not in message:
                return Input(kind, frame(message), null_error=True)
            return Input(kind, frame(message), msg_id=msg_id)
        if kind == "params":
            msg_id = self.request_id()
            method = r.choice(REQUESTS)
            message = {"jsonrpc": "2.0", "id": msg_id, "method": method,
                       "params": self.params(method)}
            return Input(kind, frame(message), msg_id=msg_id)
        method = r.choice(NOTIFICATIONS)
        params = self.params(method)
        if method == "$/cancelRequest":
            params = {"id": r.choice([self.next_id, "x", None, 1.5])}
        return Input(kind, frame({"jsonrpc": "2.0", "method": method, "params": params}))


@pytest.fixture
def server(server_settings: dict[str, Any]) -> Iterator[RawServer]:
    server = RawServer(server_settings)
    server.initialize()
    server.open(URI, SAMPLE)
    yield server
    server.kill()


def probe(server: RawServer, name: str) -> int:
    """Index in server.seen of the answer to a probe; filler is sent until one is answered."""
    for attempt in range(4):
        probe_id = f"probe-{name}-{attempt}"
        if attempt:
            server.send_bytes(FILLER)
        server.send({"id": probe_id, "method": "specedit/probe"})
        try:
            # A short wait first: a probe swallowed by an overstated body is never answered.
            reply = server.response(probe_id, timeout=2 if attempt < 3 else 30)
        except AssertionError:
            continue
        assert reply["error"]["code"] == -32601
        return server.seen.index(reply)
    raise AssertionError(f"the server stopped answering after input {name}")


def test_fuzzed_input_is_answered_or_refused_and_rewrites_still_work(
        server: RawServer, reference: Reference) -> None:
    fuzzer = Fuzzer(SEED)
    inputs = [fuzzer.make() for _ in range(INPUTS)]
    assert {i.kind for i in inputs} >= {"junk", "bad length", "long length", "params"}
    answered_up_to = probe(server, "start")
    for number, item in enumerate(inputs):
        server.send_bytes(item.data)
        answer = probe(server, str(number))
        window = server.seen[answered_up_to + 1:answer]
        if item.null_error:
            assert any(m.get("id") is None and "error" in m for m in window), (item, window)
        answered_up_to = answer
    for item in inputs:
        if item.msg_id is not None:
            server.response(item.msg_id, timeout=60)
            assert len(server.responses(item.msg_id)) == 1, item
    assert server.proc.poll() is None

    # Still a working server: a valid rewrite gives what the engine gives.
    uri = "file:///tmp/after-fuzz.py"
    server.open(uri, SAMPLE)
    reply = server.call("specedit/rewrite", {"uri": uri, "instruction": "Add type hints",
                                             "range": {"start": {"line": 8, "character": 0},
                                                       "end": {"line": 10, "character": 0}}})
    assert "result" in reply, reply
    after = apply_text_edits(SAMPLE, edits_for(reply["result"]["edit"], uri))
    assert after == reference.document_after(SAMPLE, 8, 10, "Add type hints")

