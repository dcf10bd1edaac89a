"""The pygls overrides in-process, one defect each (lsp_server/pygls_overrides/UPSTREAM.md):
the server's protocol fed parsed messages on an event loop, its writes collected."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from lsprotocol import types

from lsp_server.pygls_overrides.protocol import SpecEditProtocol
from lsp_server.server import SpecEditServer, create_server


class Output:
    """The client's end: every message the server wrote, parsed."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.messages.append(json.loads(data.split(b"\r\n\r\n", 1)[1]))

    def close(self) -> None:
        pass


class ClosedOutput(Output):
    def write(self, data: bytes) -> None:
        self.writes += 1
        raise ValueError("write to closed file")  # what a closed stdout raises


def server_with(output: Output) -> tuple[SpecEditServer, SpecEditProtocol]:
    server = create_server()
    protocol = server.protocol
    protocol.set_writer(output)
    return server, protocol


def response(output: Output, msg_id: Any) -> dict[str, Any] | None:
    found = [m for m in output.messages if m.get("id") == msg_id and "method" not in m]
    assert len(found) <= 1, found
    return found[0] if found else None


async def answered(output: Output, msg_id: Any) -> dict[str, Any]:
    """The response to `msg_id`, once the loop has run the handler (pygls answers from a
    done callback, a loop iteration after the handler)."""
    event = asyncio.Event()
    write = output.write

    def noting(data: bytes) -> None:
        write(data)
        event.set()

    output.write = noting  # type: ignore[method-assign]
    try:
        while (reply := response(output, msg_id)) is None:
            event.clear()
            await asyncio.wait_for(event.wait(), 30)
        return reply
    finally:
        output.write = write  # type: ignore[method-assign]


INITIALIZE = {"jsonrpc": "2.0", "id": "init", "method": "initialize",
              "params": {"processId": None, "rootUri": None, "capabilities": {}}}


async def test_finished_commands_and_notifications_leave_the_in_flight_table() -> None:
    output = Output()
    server, protocol = server_with(output)
    done = asyncio.Event()

    @server.command("test.noop")
    async def noop(ls: Any, *args: Any) -> str:
        return "done"

    @server.feature("test/note")
    async def note(ls: Any, params: Any) -> None:
        done.set()

    protocol.handle_payload(INITIALIZE)
    await answered(output, "init")
    for n in range(5):
        protocol.handle_payload({"jsonrpc": "2.0", "id": n, "method": "workspace/executeCommand",
                                 "params": {"command": "test.noop"}})
        assert (await answered(output, n))["result"] == "done"
        done.clear()
        protocol.handle_payload({"jsonrpc": "2.0", "method": "test/note", "params": {}})
        await asyncio.wait_for(done.wait(), 30)
    for _ in range(100):  # loop iterations (not time): the note's done callbacks run after it
        if not protocol._request_futures:
            break
        await asyncio.sleep(0)
    # pygls leaves one entry per command step and per async notification here for good.
    assert protocol._request_futures == {}


def test_an_ended_progress_forgets_its_token() -> None:
    output = Output()
    server, _ = server_with(output)
    progress = server.work_done_progress
    for n in range(3):
        progress.begin(f"t{n}", types.WorkDoneProgressBegin(title="rewrite"))
        progress.end(f"t{n}", types.WorkDoneProgressEnd(message="done"))
    assert progress.tokens == {}
    assert [m["params"]["value"]["kind"] for m in output.messages] == ["begin", "end"] * 3


def test_a_failed_write_is_not_reported_by_writing_again() -> None:
    output = ClosedOutput()
    server, protocol = server_with(output)
    server.reporter.log(types.MessageType.Log, "one message")
    server.reporter.log(types.MessageType.Log, "another")
    assert output.writes == 1  # pygls: ~200 writes for each, recursing through showMessage
    assert protocol.closed


async def test_requests_before_initialize_get_server_not_initialized() -> None:
    output = Output()
    _, protocol = server_with(output)
    protocol.handle_payload({"jsonrpc": "2.0", "id": 1, "method": "shutdown"})
    protocol.handle_payload({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": "file:///a.py", "languageId": "python", "version": 1,
                         "text": "x = 1\n"}}})
    assert response(output, 1)["error"]["code"] == -32002
    assert len(output.messages) == 1  # the notification: dropped without a word
    protocol.handle_payload(INITIALIZE)
    await answered(output, "init")
    assert protocol.workspace.text_documents == {}  # the early didOpen never happened
    protocol.handle_payload({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
    assert (await answered(output, 2))["result"] is None
