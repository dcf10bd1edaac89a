"""The server works only on documents the editor opened, over stdio as editors run it.

A request naming any other URI (a path outside the project, a missing one, a FIFO, another
scheme) is refused with the same answer whether the path exists or not, reads nothing from
disk and never leads to workspace/applyEdit. Malformed requests get one line that names the
field at fault, never a Python exception name.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_server.actions import COMMAND
from tests.helpers.lsp import (
    SAMPLE,
    Reference,
    apply_text_edits,
    editor_of,
    edits_for,
    make_client,
    open_doc,
    plain,
    start_session,
    wait_for,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = [sys.executable, "-m", "lsp_server", "--stdio"]
AREA = (8, 10)  # the body of area() in SAMPLE
SELECTION = {"start": {"line": 8, "character": 0}, "end": {"line": 10, "character": 0}}
# A Python exception's name in a message the user reads (AttributeError, TypeError, ...).
EXCEPTION_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception)\b")
# If the server blocked on a FIFO, nothing would answer: a hang guard, not a speed limit.
HANG_GUARD = 30


@pytest_lsp.fixture(scope="module",
                    config=ClientServerConfig(server_command=SERVER, client_factory=make_client))
async def client(lsp_client: LanguageClient, server_settings: dict[str, Any]):
    await start_session(lsp_client, server_settings, wait_ready=False)
    yield
    await lsp_client.shutdown_session()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A project, a secret beside it with a canary in it, and a path that does not exist."""
    root = tmp_path_factory.mktemp("fs")
    (root / "project").mkdir()
    (root / "secret").mkdir()
    canary = f"CANARY_{uuid.uuid4().hex}"
    secret = root / "secret" / "canary.py"
    secret.write_text(SAMPLE.replace('"""Shapes."""', f'"""{canary}"""'), encoding="utf-8")
    missing = root / "secret" / "missing.py"
    return {"root": root, "canary": canary, "secret": secret, "missing": missing}


def unopened_uris(files: dict[str, Any], name: str) -> list[str]:
    """The ways a request could name `secret/<name>` without the editor having opened it."""
    root = files["root"]
    path = f"{root}/secret/{name}"
    return [
        f"file://{root}/project/../secret/{name}",  # out of the project
        Path(path).as_uri(),
        f"http://example.com{path}",  # schemes that pygls would map to the same local path
        f"untitled:{path}",
    ]


def no_canary(client: LanguageClient, files: dict[str, Any]) -> None:
    """Nothing the server sent (messages, logs, progress) contains the secret's text."""
    canary = files["canary"]
    for message in [*client.messages, *client.log_messages]:
        assert canary not in message.message
    assert canary not in repr(client.progress_reports)


async def rewrite_error(client: LanguageClient, params: Any) -> tuple[int, str]:
    """specedit/rewrite must fail: its error's code and message."""
    with pytest.raises(JsonRpcException) as failure:
        await client.protocol.send_request_async("specedit/rewrite", params)
    return failure.value.code, failure.value.message


def rewrite_params(uri: str, **extra: Any) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "range": SELECTION, "instruction": "Add comments",
            **extra}


async def code_actions(client: LanguageClient, uri: str) -> list[Any]:
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=types.Position(line=8, character=0),
                          end=types.Position(line=10, character=0)),
        context=types.CodeActionContext(diagnostics=[])))
    return list(actions or [])


async def test_rewrite_request_refuses_unopened_documents_alike(
        client: LanguageClient, files: dict[str, Any]):
    answers = set()
    for name in ("canary.py", "missing.py"):
        for uri in unopened_uris(files, name):
            answers.add(await rewrite_error(client, rewrite_params(uri)))
    # One answer for all: existing or not, any scheme; nothing says what is on disk.
    (answer,) = answers
    code, message = answer
    assert code == -32803  # RequestFailed
    assert "not open in the editor" in message
    no_canary(client, files)


async def test_command_on_unopened_documents_applies_nothing_and_asks_nothing(
        client: LanguageClient, files: dict[str, Any]):
    editor = editor_of(client)
    applied, asked = len(editor.applied), len(editor.asked)
    results = []
    for uri in [*unopened_uris(files, "canary.py"), *unopened_uris(files, "missing.py"),
                "file:///etc/passwd"]:
        for instruction in ("Add comments", None):  # without one, the presets would be offered
            argument = {"uri": uri, "range": SELECTION}
            if instruction:
                argument["instruction"] = instruction
            results.append(await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=COMMAND, arguments=[argument])))
    assert all(r == results[0] for r in results), results
    assert results[0]["applied"] is False
    assert "not open in the editor" in results[0]["reason"]
    assert len(editor.applied) == applied  # never a workspace/applyEdit
    assert len(editor.asked) == asked
    no_canary(client, files)


async def test_resolve_of_an_unopened_document_fills_in_nothing(
        client: LanguageClient, files: dict[str, Any]):
    shown = len(client.messages)
    for uri in [unopened_uris(files, "canary.py")[0], unopened_uris(files, "missing.py")[0]]:
        action = types.CodeAction(title="Add docstrings", kind=types.CodeActionKind.RefactorRewrite,
                                  data={"uri": uri, "range": SELECTION,
                                        "instruction": "Add docstrings"})
        resolved = await client.code_action_resolve_async(action)
        assert resolved.edit is None
    first, second = client.messages[shown:]
    assert first.message == second.message and "not open in the editor" in first.message
    no_canary(client, files)


async def test_no_code_actions_for_unopened_documents(
        client: LanguageClient, files: dict[str, Any]):
    for name in ("canary.py", "missing.py"):
        for uri in unopened_uris(files, name):
            assert await code_actions(client, uri) == []


async def test_a_fifo_blocks_nothing(client: LanguageClient, files: dict[str, Any]):
    """Reading a FIFO with no writer blocks until one comes: the server must not try."""
    fifo = files["root"] / "secret" / "pipe.py"
    os.mkfifo(fifo)
    opened = "file:///tmp/specedit-opened/fifo-neighbour.py"
    open_doc(client, opened, SAMPLE)
    fifo_actions = asyncio.ensure_future(code_actions(client, fifo.as_uri()))
    fifo_rewrite = asyncio.ensure_future(rewrite_error(client, rewrite_params(fifo.as_uri())))
    try:
        # Answered while the FIFO requests are in flight: the event loop is free.
        assert await asyncio.wait_for(code_actions(client, opened), HANG_GUARD)
        assert await asyncio.wait_for(fifo_actions, HANG_GUARD) == []
        code, message = await asyncio.wait_for(fifo_rewrite, HANG_GUARD)
        assert code == -32803 and "not open in the editor" in message
    finally:
        # Should the server be reading the FIFO, let it go so that a failure here does not
        # hang the rest of the module: a writer frees a reader blocked in open(), the unlink
        # makes later opens fail at once, and closing the writer ends the file.
        writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        os.unlink(fifo)
        os.close(writer)
        for pending in (fifo_actions, fifo_rewrite):
            pending.cancel()


async def test_a_closed_document_is_no_longer_read(client: LanguageClient,
                                                   files: dict[str, Any]):
    path = files["root"] / "project" / "closed.py"
    path.write_text(SAMPLE, encoding="utf-8")  # on disk too: the server must not fall back
    uri = path.as_uri()
    open_doc(client, uri, SAMPLE)
    assert await code_actions(client, uri)
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    assert await code_actions(client, uri) == []
    code, message = await rewrite_error(client, rewrite_params(uri))
    assert code == -32803 and "not open in the editor" in message


async def test_an_opened_untitled_buffer_is_rewritten(
        client: LanguageClient, reference: Reference):
    """The rule is 'opened', not 'a file': an unsaved buffer's text came from the editor."""
    await wait_for(lambda: any(s["state"] == "ready" for s in editor_of(client).statuses),
                   what="specedit/status ready")
    uri = "untitled:Untitled-1"
    open_doc(client, uri, SAMPLE)
    client.progress_reports.setdefault("client-token-1", [])  # the client's own token
    response = plain(await client.protocol.send_request_async(
        "specedit/rewrite", rewrite_params(uri, workDoneToken="client-token-1")))
    edits = edits_for(response["edit"], uri)
    assert apply_text_edits(SAMPLE, edits) == reference.document_after(
        SAMPLE, *AREA, "Add comments")
    assert any(isinstance(v, types.WorkDoneProgressEnd)
               for v in client.progress_reports["client-token-1"])  # reported under it


@pytest.mark.parametrize(("params", "field"), [
    ({"textDocument": "file:///tmp/specedit-opened/a.py", "range": SELECTION,
      "instruction": "x"}, "textDocument"),
    (rewrite_params("file:///tmp/specedit-opened/a.py", workDoneToken={"a": 1}),
     "workDoneToken"),
    (rewrite_params("file:///tmp/specedit-opened/a.py", workDoneToken=True), "workDoneToken"),
    ({"textDocument": {"uri": 7}, "range": SELECTION, "instruction": "x"}, "uri"),
    ({"textDocument": {"uri": "file:///a.py"}, "range": "lines 1-2", "instruction": "x"},
     "range"),
    (["file:///a.py"], "object"),
])
async def test_malformed_rewrite_requests_get_a_clear_line(
        client: LanguageClient, params: Any, field: str):
    open_doc(client, "file:///tmp/specedit-opened/a.py", SAMPLE)
    code, message = await rewrite_error(client, params)
    assert code == -32803
    assert field in message and len(message.splitlines()) == 1, message
    assert not EXCEPTION_NAME.search(message), message
    shown = client.messages[-1].message
    assert shown == message and not EXCEPTION_NAME.search(shown)


async def test_a_malformed_command_argument_gets_a_clear_line(client: LanguageClient):
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=COMMAND, arguments=[{"textDocument": "file:///tmp/a.py", "range": SELECTION,
                                     "instruction": "x"}]))
    assert result["applied"] is False
    assert "textDocument" in result["reason"]
    assert not EXCEPTION_NAME.search(result["reason"])
