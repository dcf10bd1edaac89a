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


async def initialized_with_a_command(output: Output) -> tuple[SpecEditServer, SpecEditProtocol,
                                                               dict[str, Any]]:
    """A server with `test.wait`, a command that runs until its future is resolved."""
    server, protocol = server_with(output)
    state: dict[str, Any] = {"started": asyncio.Event()}

    @server.command("test.wait")
    async def wait(ls: Any, *args: Any) -> str:
        state["future"] = asyncio.get_running_loop().create_future()
        state["started"].set()
        return await state["future"]

    protocol.handle_payload(INITIALIZE)
    await answered(output, "init")
    protocol.handle_payload({"jsonrpc": "2.0", "id": "cmd", "method": "workspace/executeCommand",
                             "params": {"command": "test.wait"}})
    await asyncio.wait_for(state["started"].wait(), 30)
    return server, protocol, state


async def test_shutdown_while_a_command_runs_is_answered_and_cancels_it() -> None:
    output = Output()
    _, protocol, state = await initialized_with_a_command(output)
    protocol.handle_payload({"jsonrpc": "2.0", "id": "bye", "method": "shutdown"})
    # pygls: -32603 "dictionary changed size during iteration", and not shut down.
    assert (await answered(output, "bye"))["result"] is None
    assert protocol.shut_down
    assert (await answered(output, "cmd"))["error"]["code"] == -32800
    for _ in range(100):  # loop iterations: the command's task sees its cancellation
        if state["future"].done():
            break
        await asyncio.sleep(0)
    assert state["future"].cancelled()


async def test_a_command_that_ends_cancelled_is_answered() -> None:
    output = Output()
    _, _, state = await initialized_with_a_command(output)
    state["future"].cancel()  # what the command awaited was cancelled
    # pygls: CancelledError out of a loop callback, and the request is never answered.
    assert (await answered(output, "cmd"))["error"]["code"] == -32800


async def test_cancelling_a_command_reaches_the_cancel_hook() -> None:
    output = Output()
    _, protocol, _ = await initialized_with_a_command(output)
    cancelled: list[Any] = []
    protocol.on_cancel_request = cancelled.append
    protocol.handle_payload({"jsonrpc": "2.0", "method": "$/cancelRequest",
                             "params": {"id": "cmd"}})
    # pygls answers -32800 but never cancels the command's own task: the hook can.
    assert cancelled == ["cmd"]
    assert (await answered(output, "cmd"))["error"]["code"] == -32800


async def test_exit_stops_the_protocol_without_raising_system_exit() -> None:
    output = Output()
    _, protocol = server_with(output)
    protocol.handle_payload(INITIALIZE)
    await answered(output, "init")
    protocol.handle_payload({"jsonrpc": "2.0", "method": "exit"})  # pygls: sys.exit(1)
    assert protocol.exited and protocol.closed and not protocol.shut_down
