"""The protocol against a real server process over stdio: bad frames, bad messages, bad
params, and the lifecycle (shutdown and exit while rewrites run, stdin closing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lsp_server.actions import COMMAND
from tests.helpers.lsp import SAMPLE, TEST_SETTINGS
from tests.helpers.raw_lsp import RawServer, frame, frame_body

# Whole seconds, far above the target (2 s) so a loaded machine passes; before the fixes these
# took 25-30 s (exit during a rewrite) or never happened (a deaf server).
EXIT_LIMIT = 10
# Greedy with thousands of tokens: a rewrite that runs until it is stopped.
SLOW = {**TEST_SETTINGS, "method": "greedy", "maxNewTokens": 3000}
URI = "file:///tmp/hardening.py"
AREA = {"start": {"line": 7, "character": 0}, "end": {"line": 10, "character": 0}}


@pytest.fixture
def idle_server() -> Iterator[RawServer]:
    """Initialised, no model loaded (the model does not exist): for the framing tests."""
    server = RawServer({**TEST_SETTINGS, "model": "/nonexistent/model"})
    server.initialize(wait_ready=False)
    yield server
    server.kill()


@pytest.fixture
def slow_server(tiny_model_dir: Path) -> Iterator[RawServer]:
    server = RawServer({**SLOW, "model": str(tiny_model_dir)})
    server.initialize({"window": {"workDoneProgress": True}})
    server.open(URI, SAMPLE)
    yield server
    server.kill()


def null_errors(server: RawServer) -> list[dict[str, Any]]:
    server.responses(None)  # drain what arrived
    return [m for m in server.seen if "error" in m and m.get("id") is None]


def assert_still_answers(server: RawServer) -> None:
    reply = server.call("textDocument/hover", {
        "textDocument": {"uri": URI}, "position": {"line": 0, "character": 0}}, timeout=30)
    assert reply["error"]["code"] == -32601  # no hover: answered all the same


# -- framing ------------------------------------------------------------------------------------

BODY = b'{"jsonrpc": "2.0", "method": "$/noop"}'


@pytest.mark.parametrize("bad, expected", [
    (frame_body(BODY, b"abc"), "not a number"),
    (frame_body(BODY, b"-5"), "not a number"),
    (frame_body(BODY, 1000000000000), "over the limit"),
    (frame_body(BODY, 10), "not JSON"),  # shorter than the body
    (frame_body(BODY, headers=[(b"Content-Type", b"x")]), "without Content-Length"),
    (b"\x00\xff garbage { not a header", "not a message header"),
])
def test_a_bad_frame_gets_an_error_and_the_next_message_an_answer(
        idle_server: RawServer, bad: bytes, expected: str) -> None:
    idle_server.send_bytes(bad)
    assert_still_answers(idle_server)
    errors = null_errors(idle_server)
    assert errors and expected in errors[0]["error"]["message"], errors
    assert errors[0]["error"]["code"] == -32700


def test_lf_only_headers_and_an_overstated_length_are_read(idle_server: RawServer) -> None:
    body = b'{"jsonrpc": "2.0", "id": 7, "method": "textDocument/hover", "params": ' \
           b'{"textDocument": {"uri": "file:///x"}, "position": {"line": 0, "character": 0}}}'
    idle_server.send_bytes(frame_body(body, eol=b"\n"))
    assert idle_server.response(7, timeout=30)["error"]["code"] == -32601
    # Overstated: the body ends at its closing brace; the next message is not swallowed.
    idle_server.send_bytes(frame_body(body.replace(b'"id": 7', b'"id": 8'), len(body) + 500))
    assert idle_server.response(8, timeout=30)["error"]["code"] == -32601
    assert_still_answers(idle_server)
    assert null_errors(idle_server) == []


def test_an_absurd_length_is_refused_without_allocating_it(idle_server: RawServer) -> None:
    idle_server.send_bytes(frame_body(b"", 50000000000))  # the header alone
    idle_server.send_bytes(b"x" * 1_000_000)  # a megabyte of its "body", dropped as it comes
    idle_server.send_bytes(frame({"jsonrpc": "2.0", "id": 9, "method": "shutdown"}))
    assert idle_server.response(9, timeout=30) == {"jsonrpc": "2.0", "id": 9, "result": None}
    status = Path(f"/proc/{idle_server.proc.pid}/status")
    if status.exists():  # Linux: the body was never held
        rss_kib = int(next(line.split()[1] for line in status.read_text().splitlines()
                           if line.startswith("VmRSS:")))
        assert rss_kib < 1_000_000
    assert [e["error"]["message"] for e in null_errors(idle_server)] == [
        "unreadable message: Content-Length 50000000000 is over the limit of 67108864 bytes: "
        "message refused"]


# -- messages -----------------------------------------------------------------------------------

@pytest.mark.parametrize("body, code", [
    (b"[1, 2]", -32600), (b"42", -32600), (b'"text"', -32600), (b"null", -32600),
    (b"{nope", -32700), (b"\xff\xfe\x00", -32700), (b"[" * 100_000, -32700),
    (b'{"jsonrpc": "2.0", "id": 1.5, "method": "shutdown"}', -32600),
    (b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "shutdown"}', -32600),
    # Neither request nor response: id null, since the client may have a request 3 itself.
    (b'{"jsonrpc": "2.0", "id": 3}', -32600),
    (b'{"id": 4, "result": null}', -32600),
])
def test_a_body_that_is_no_request_gets_an_error_with_id_null(
        idle_server: RawServer, body: bytes, code: int) -> None:
    idle_server.send_bytes(frame_body(body))
    assert_still_answers(idle_server)
    errors = null_errors(idle_server)
    assert len(errors) == 1 and errors[0]["error"]["code"] == code, errors


@pytest.mark.parametrize("message, code", [
    ({"id": 21, "method": "textDocument/codeAction", "params": {
        "textDocument": {"uri": URI}, "context": {"diagnostics": []},
        "range": {"start": {"line": -1, "character": 0}, "end": {"line": 0, "character": 0}}}},
     -32602),
    ({"id": 22, "method": "textDocument/codeAction", "params": {"textDocument": 5}}, -32602),
    ({"id": 23, "method": "workspace/executeCommand", "params": {"command": 7}}, -32602),
    ({"id": 24, "method": "specedit/rewrite", "params": 17}, -32602),
    ({"id": 25, "method": 12}, -32600),
    ({"id": 26, "jsonrpc": "1.0", "method": "shutdown"}, -32600),
])
def test_a_request_with_bad_params_gets_exactly_one_error(
        idle_server: RawServer, message: dict[str, Any], code: int) -> None:
    if message.get("jsonrpc") == "1.0":
        idle_server.send_bytes(frame(message))
    else:
        idle_server.send(message)
    reply = idle_server.response(message["id"], timeout=30)
    assert reply["error"]["code"] == code, reply
    assert "\n" not in reply["error"]["message"]
    assert_still_answers(idle_server)
    assert len(idle_server.responses(message["id"])) == 1


def test_a_resolve_that_cannot_run_returns_the_action_as_sent(idle_server: RawServer) -> None:
    """codeAction/resolve answers with the action itself, without an edit, and the reason
    goes to the user: an editor shows nothing for an error response to a resolve."""
    action = {"title": "Add type hints", "kind": "refactor.rewrite", "data": {
        "uri": "file:///tmp/never-opened.py", "range": AREA, "instruction": "Add type hints",
        "version": 1}}
    reply = idle_server.call("codeAction/resolve", action, timeout=30)
    assert reply == {"jsonrpc": "2.0", "id": reply["id"], "result": action}, reply
    shown = idle_server.wait_for(lambda m: m.get("method") == "window/showMessage"
                                 and "not open" in m["params"]["message"],
                                 what="the refusal's message")
    assert shown["params"] == {"type": 2, "message": "specedit: the document is not open in "
                               "the editor: open it, then select the code again"}


def test_requests_after_shutdown_are_refused_and_exit_returns_0(
        idle_server: RawServer) -> None:
    assert idle_server.call("shutdown")["result"] is None
    reply = idle_server.call("textDocument/codeAction", {
        "textDocument": {"uri": URI}, "context": {"diagnostics": []}, "range": AREA})
    assert reply["error"]["code"] == -32600 and "shutdown" in reply["error"]["message"]
    idle_server.send({"method": "exit"})
    assert idle_server.wait_exit(EXIT_LIMIT) == 0


# -- before initialize ---------------------------------------------------------------------------

@pytest.fixture
def fresh_server() -> Iterator[RawServer]:
    """Started, not initialised."""
    server = RawServer({**TEST_SETTINGS, "model": "/nonexistent/model"})
    yield server
    server.kill()


CODE_ACTION = {"textDocument": {"uri": URI}, "range": AREA, "context": {"diagnostics": []}}


def test_before_initialize_requests_get_32002_and_notifications_are_dropped(
        fresh_server: RawServer) -> None:
    fresh_server.open(URI, SAMPLE)  # dropped: nothing is open before initialize
    reply = fresh_server.call("textDocument/codeAction", CODE_ACTION)
    assert reply["error"]["code"] == -32002, reply  # ServerNotInitialized, not -32603
    assert "initialize" in reply["error"]["message"]
    assert fresh_server.call("shutdown")["error"]["code"] == -32002
    fresh_server.initialize(wait_ready=False)
    # The early didOpen was dropped, so the document is not open: no actions for it.
    assert fresh_server.call("textDocument/codeAction", CODE_ACTION)["result"] == []
    fresh_server.open(URI, SAMPLE)
    titles = [a["title"] for a in fresh_server.call("textDocument/codeAction",
                                                     CODE_ACTION)["result"]]
    assert "Add type hints" in titles
    assert [m for m in fresh_server.seen if m.get("method") == "window/showMessage"] == []


def test_exit_before_initialize_ends_the_server_with_1(fresh_server: RawServer) -> None:
    fresh_server.send({"method": "exit"})
    assert fresh_server.wait_exit(EXIT_LIMIT) == 1


# -- the lifecycle while a rewrite runs ----------------------------------------------------------

def start_rewrite(server: RawServer, kind: str) -> int:
    """Start a rewrite of `kind` and return its request id once it is generating tokens."""
    if kind == "command":
        msg_id = server.request("workspace/executeCommand", {"command": COMMAND, "arguments": [
            {"uri": URI, "range": AREA, "instruction": "Add type hints"}]})
    elif kind == "resolve":
        msg_id = server.request("codeAction/resolve", {"title": "Add type hints", "data": {
            "uri": URI, "range": AREA, "instruction": "Add type hints"}})
    else:
        msg_id = server.request("specedit/rewrite", {
            "uri": URI, "range": AREA, "instruction": "Add type hints", "workDoneToken": "tok"})
    server.wait_for(lambda m: m.get("method") == "$/progress"
                    and "tokens/s" in (m["params"]["value"].get("message") or ""),
                    what="progress of a rewrite generating tokens")
    return msg_id


@pytest.mark.parametrize("kind", ["command", "resolve", "preview"])
def test_shutdown_during_a_rewrite_answers_null_and_exit_returns_0(
        slow_server: RawServer, kind: str) -> None:
    msg_id = start_rewrite(slow_server, kind)
    shutdown = slow_server.call("shutdown", timeout=30)
    assert shutdown == {"jsonrpc": "2.0", "id": shutdown["id"], "result": None}
    # The rewrite's own request is answered once: cancelled (-32800), whatever its kind; a
    # resolve or preview also tells the user, with the message every cancel gives.
    reply = slow_server.response(msg_id, timeout=30)
    assert reply == {"jsonrpc": "2.0", "id": msg_id, "error": {
        "code": -32800, "message": f'Request with id "{msg_id}" is canceled'}}, reply
    if kind != "command":
        shown = slow_server.wait_for(lambda m: m.get("method") == "window/showMessage"
                                     and "cancel" in m["params"]["message"],
                                     what="the cancel's message")
        assert shown["params"] == {"type": 3,
                                   "message": "specedit: rewrite cancelled; nothing was changed."}
    slow_server.send({"method": "exit"})
    assert slow_server.wait_exit(EXIT_LIMIT) == 0
    assert len(slow_server.responses(msg_id)) == 1


@pytest.mark.parametrize("end", ["exit", "close stdin"])
def test_the_end_without_shutdown_during_a_rewrite_returns_1_quietly(
        slow_server: RawServer, end: str) -> None:
    start_rewrite(slow_server, "command")
    if end == "exit":
        slow_server.send({"method": "exit"})
    else:
        slow_server.close_stdin()
    assert slow_server.wait_exit(EXIT_LIMIT) == 1
    assert len(slow_server.stderr.splitlines()) <= 5, slow_server.stderr[-3000:]


def test_stdin_closing_after_shutdown_returns_0(idle_server: RawServer) -> None:
    assert idle_server.call("shutdown")["result"] is None
    idle_server.close_stdin()
    assert idle_server.wait_exit(EXIT_LIMIT) == 0
