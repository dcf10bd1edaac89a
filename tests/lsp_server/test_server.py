"""End to end over stdio: the server as editors start it, driven with recorded capabilities.

One server per client kind (VS Code 1.65 and Neovim 0.7 capabilities) serves every test in
this module, each test on its own document, so the model loads twice in all.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_server.actions import COMMAND, REWRITE_TITLE
from tests.helpers.lsp import (
    SAMPLE,
    TEST_SETTINGS,
    Reference,
    apply_text_edits,
    change_text,
    editor_of,
    edits_for,
    make_client,
    open_doc,
    plain,
    start_session,
    text_of,
    tokens_reported,
    wait_for,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = [sys.executable, "-m", "lsp_server", "--stdio"]
CLIENTS = ["visual-studio-code", "neovim@v0.7"]

AREA = (8, 10)  # lines [8, 10): the body of area(), 0-based
WHOLE_AREA = types.Range(start=types.Position(line=7, character=0),
                         end=types.Position(line=10, character=0))  # lines 7-9: all of area()


def lines_range(first: int, end: int) -> types.Range:
    """A linewise selection of lines [first, end), as editors send it."""
    return types.Range(start=types.Position(line=first, character=0),
                       end=types.Position(line=end, character=0))


@pytest_lsp.fixture(scope="module", params=CLIENTS,
                    config=ClientServerConfig(server_command=SERVER, client_factory=make_client))
async def client(request: pytest.FixtureRequest, lsp_client: LanguageClient,
                 server_settings: dict[str, Any]):
    status = await start_session(lsp_client, server_settings, capabilities=request.param)
    assert status[0]["state"] == "ready", status
    yield
    await lsp_client.shutdown_session()


_doc_counter = 0


def new_doc(client: LanguageClient, text: str = SAMPLE) -> str:
    global _doc_counter
    _doc_counter += 1
    uri = f"file:///tmp/specedit-test/doc{_doc_counter}.py"
    open_doc(client, uri, text)
    return uri


async def execute(client: LanguageClient, argument: dict[str, Any]) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=COMMAND, arguments=[argument]))


async def code_actions(client: LanguageClient, uri: str, selection: types.Range | None = None,
                       only: list[str] | None = None) -> Any:
    """The code actions the server offers for `selection` (default: the AREA function)."""
    return await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=selection if selection is not None else lines_range(*AREA),
        context=types.CodeActionContext(diagnostics=[], only=only)))


def range_json(selection: types.Range) -> dict[str, Any]:
    return plain(selection)


async def configure(client: LanguageClient, settings: dict[str, Any]) -> None:
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"specedit": settings}))


class TestCodeActions:
    async def test_only_for_non_empty_selections(self, client: LanguageClient):
        uri = new_doc(client)

        async def titles(selection: types.Range, only: list[str] | None = None) -> list[str]:
            actions = await code_actions(client, uri, selection, only)
            return [a.title for a in actions or []]

        cursor = types.Position(line=8, character=4)
        assert await titles(types.Range(start=cursor, end=cursor)) == []
        assert await titles(lines_range(6, 7)) == []  # a blank line: nothing to rewrite
        expected = [REWRITE_TITLE, *TEST_SETTINGS["presets"]]
        assert await titles(WHOLE_AREA) == expected
        partial = types.Range(start=types.Position(line=8, character=4),
                              end=types.Position(line=8, character=9))
        assert await titles(partial) == expected
        assert await titles(WHOLE_AREA, only=["refactor"]) == expected
        assert await titles(WHOLE_AREA, only=["quickfix"]) == []

    async def test_actions_shape(self, client: LanguageClient):
        uri = new_doc(client)
        actions = await code_actions(client, uri, WHOLE_AREA)
        ask, *presets = actions
        assert ask.kind == types.CodeActionKind.RefactorRewrite
        assert ask.command.command == COMMAND
        assert list(ask.command.arguments) == [{"uri": uri, "range": range_json(WHOLE_AREA)}]
        for action in presets:
            # Both clients resolve `edit`: the rewrite runs only when one is picked.
            assert action.edit is None and action.command is None
            assert action.data["instruction"] == action.title


async def test_command_with_instruction_applies_expected_edit(
        client: LanguageClient, reference: Reference):
    uri = new_doc(client)
    editor = editor_of(client)
    before = len(editor.applied)
    result = await execute(client, {"uri": uri, "range": range_json(lines_range(*AREA)),
                                    "instruction": "Add comments"})
    assert result["applied"] is True, result
    assert len(editor.applied) == before + 1
    assert text_of(client, uri) == reference.document_after(SAMPLE, *AREA, "Add comments")
    expected = reference.rewrite(SAMPLE, *AREA, "Add comments")
    assert result["stats"]["outputTokens"] == expected.stats.output_tokens
    # Every edit stays inside the selected lines.
    for text_edit in edits_for(editor.applied[-1].edit, uri):
        assert AREA[0] <= text_edit.range.start.line <= text_edit.range.end.line <= AREA[1]
    # The status bar learns about the rewrite.
    last = await wait_for(lambda: [s for s in editor.statuses if "lastRewrite" in s])
    assert set(last[-1]["lastRewrite"]) == {"tokensPerSecond", "speedup", "outputTokens",
                                            "forwardPasses"}


async def test_partial_selection_rewrites_whole_lines(
        client: LanguageClient, reference: Reference):
    uri = new_doc(client)
    partial = types.Range(start=types.Position(line=8, character=6),
                          end=types.Position(line=9, character=3))
    result = await execute(client, {"uri": uri, "range": range_json(partial),
                                    "instruction": "Add comments"})
    assert result["applied"] is True, result
    assert text_of(client, uri) == reference.document_after(SAMPLE, *AREA, "Add comments")


async def test_command_without_instruction_offers_presets(
        client: LanguageClient, reference: Reference):
    uri = new_doc(client)
    editor = editor_of(client)
    editor.answer = lambda params: params.actions[1]  # the user picks "Add type hints"
    try:
        result = await execute(client, {"uri": uri, "range": range_json(lines_range(*AREA))})
    finally:
        editor.answer = lambda params: params.actions[0]
    assert [a.title for a in editor.asked[-1].actions] == TEST_SETTINGS["presets"]
    assert result["applied"] is True, result
    assert text_of(client, uri) == reference.document_after(SAMPLE, *AREA, "Add type hints")


async def test_resolve_fills_in_the_edit(client: LanguageClient, reference: Reference):
    uri = new_doc(client)
    editor = editor_of(client)
    before = len(editor.applied)
    actions = await code_actions(client, uri)
    docstrings = next(a for a in actions if a.title == "Add docstrings")
    resolved = await client.code_action_resolve_async(docstrings)
    assert resolved.title == "Add docstrings"
    edits = edits_for(resolved.edit, uri)
    assert edits
    assert apply_text_edits(SAMPLE, edits) == reference.document_after(
        SAMPLE, *AREA, "Add docstrings")
    assert len(editor.applied) == before  # resolving returns the edit; the editor applies it
    assert text_of(client, uri) == SAMPLE


async def test_resolving_the_instruction_action_changes_nothing(client: LanguageClient):
    """VS Code resolves every action it shows, the command-carrying one too: no warning."""
    uri = new_doc(client)
    shown = len(client.messages)
    actions = await code_actions(client, uri)
    ask = next(a for a in actions if a.title.startswith("Rewrite selection with instruction"))
    resolved = await client.code_action_resolve_async(ask)
    assert resolved.title == ask.title and resolved.edit is None
    assert text_of(client, uri) == SAMPLE
    assert len(client.messages) == shown


async def test_rewrite_request_returns_edit_without_applying(
        client: LanguageClient, reference: Reference):
    uri = new_doc(client)
    editor = editor_of(client)
    before = len(editor.applied)
    response = plain(await client.protocol.send_request_async("specedit/rewrite", {
        "textDocument": {"uri": uri}, "range": range_json(lines_range(*AREA)),
        "instruction": "Add comments"}))
    assert len(editor.applied) == before
    assert text_of(client, uri) == SAMPLE
    edits = edits_for(response["edit"], uri)
    assert apply_text_edits(SAMPLE, edits) == reference.document_after(
        SAMPLE, *AREA, "Add comments")
    expected = reference.rewrite(SAMPLE, *AREA, "Add comments")
    stats = response["stats"]
    assert stats["outputTokens"] == expected.stats.output_tokens
    assert stats["finishReason"] == expected.finish_reason


async def test_progress_begin_report_end(client: LanguageClient):
    uri = new_doc(client)
    known = set(client.progress_reports)
    result = await execute(client, {"uri": uri, "range": range_json(lines_range(*AREA)),
                                    "instruction": "Add comments"})
    assert result["applied"] is True, result
    (token,) = set(client.progress_reports) - known
    values = client.progress_reports[token]
    assert isinstance(values[0], types.WorkDoneProgressBegin)
    assert values[0].cancellable is True
    reports = [v for v in values if isinstance(v, types.WorkDoneProgressReport)]
    assert any("tokens/s" in (r.message or "") for r in reports), reports
    assert isinstance(values[-1], types.WorkDoneProgressEnd)
    assert "tokens" in values[-1].message


# -- slow rewrites: cancelling, editing meanwhile ---------------------------------------------

SLOW = {**TEST_SETTINGS, "method": "greedy", "maxNewTokens": 3000}


@pytest.fixture
async def slow_rewrites(client: LanguageClient, server_settings: dict[str, Any]):
    """Rewrites that run for many seconds unless stopped (greedy, thousands of tokens)."""
    await configure(client, {**server_settings, **SLOW})
    yield
    await configure(client, server_settings)


async def until_decoding(client: LanguageClient, known: set[Any]) -> Any:
    """The progress token of the rewrite that has started generating tokens."""
    tokens = await wait_for(lambda: [t for t in tokens_reported(client) if t not in known],
                            what="progress reports of generated tokens")
    return tokens[0]


async def cancel_by_request(client: LanguageClient, request_id: str,
                            pending: asyncio.Future[Any]) -> None:
    """$/cancelRequest: the request fails with RequestCancelled."""
    client.cancel_request(types.CancelParams(id=request_id))
    with pytest.raises(JsonRpcException) as failure:
        await asyncio.wait_for(pending, 30)
    assert failure.value.code == -32800  # RequestCancelled


async def assert_cancelled_untouched(client: LanguageClient, token: Any, uri: str,
                                     applied_before: int) -> None:
    """The progress ends as cancelled, nothing is applied and the document is as it was."""
    end = await wait_for(lambda: [v for v in client.progress_reports[token]
                                  if isinstance(v, types.WorkDoneProgressEnd)])
    assert "cancel" in end[0].message
    assert len(editor_of(client).applied) == applied_before
    assert text_of(client, uri) == SAMPLE


async def test_cancel_request_mid_rewrite_applies_nothing(
        client: LanguageClient, slow_rewrites: None, reference: Reference,
        server_settings: dict[str, Any]):
    uri = new_doc(client)
    before = len(editor_of(client).applied)
    known = set(client.progress_reports)
    request_id = f"cancel-me-{uri}"
    pending = asyncio.ensure_future(client.protocol.send_request_async("specedit/rewrite", {
        "textDocument": {"uri": uri}, "range": range_json(lines_range(*AREA)),
        "instruction": "Add docstrings"}, msg_id=request_id))
    token = await until_decoding(client, known)
    # The engine runs off the event loop: other requests are answered meanwhile.
    actions = await asyncio.wait_for(code_actions(client, uri), 5)
    assert actions
    assert not pending.done()
    await cancel_by_request(client, request_id, pending)
    await assert_cancelled_untouched(client, token, uri, before)

    # The next request still works.
    await configure(client, server_settings)
    result = await execute(client, {"uri": uri, "range": range_json(lines_range(*AREA)),
                                    "instruction": "Add comments"})
    assert result["applied"] is True, result
    assert text_of(client, uri) == reference.document_after(SAMPLE, *AREA, "Add comments")


@pytest.mark.parametrize("how", ["progress", "cancelRequest"])
async def test_cancel_stops_command(client: LanguageClient, slow_rewrites: None, how: str):
    uri = new_doc(client)
    before = len(editor_of(client).applied)
    known = set(client.progress_reports)
    request_id = f"command-{how}-{uri}"
    pending = asyncio.ensure_future(client.protocol.send_request_async(
        types.WORKSPACE_EXECUTE_COMMAND, types.ExecuteCommandParams(command=COMMAND, arguments=[{
            "uri": uri, "range": range_json(lines_range(*AREA)),
            "instruction": "Add docstrings"}]), msg_id=request_id))
    token = await until_decoding(client, known)
    if how == "progress":
        client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
        result = await asyncio.wait_for(pending, 30)
        assert result["applied"] is False
        assert "cancelled" in result["reason"]
    else:
        await cancel_by_request(client, request_id, pending)
    # Either way the engine stops: the progress ends as cancelled and nothing is applied.
    await assert_cancelled_untouched(client, token, uri, before)
    assert any("cancelled" in m.message for m in client.messages)


async def test_edit_during_rewrite_refuses_to_apply(
        client: LanguageClient, server_settings: dict[str, Any]):
    # Long enough to type into (about a second), short enough to finish on its own.
    await configure(client, {**server_settings, "method": "greedy", "maxNewTokens": 48})
    try:
        uri = new_doc(client)
        editor = editor_of(client)
        before = len(editor.applied)
        known = set(client.progress_reports)
        pending = asyncio.ensure_future(execute(client, {
            "uri": uri, "range": range_json(lines_range(*AREA)),
            "instruction": "Add docstrings"}))
        await until_decoding(client, known)
        typed = SAMPLE.replace("PI = math.pi", "PI = 3.14159")
        change_text(client, uri, typed)  # the user types while the rewrite runs
        result = await asyncio.wait_for(pending, 60)
    finally:
        await configure(client, server_settings)
    assert result["applied"] is False
    assert "changed" in result["reason"], result
    assert len(editor.applied) == before
    assert text_of(client, uri) == typed
    assert any("changed" in m.message and m.type == types.MessageType.Warning
               for m in client.messages)


async def test_a_version_already_stale_when_the_request_arrives_is_refused(
        client: LanguageClient):
    """The code action was offered for version 1; the user typed before choosing it, so
    the request names a version the document has left: refused before any rewrite runs."""
    uri = new_doc(client)
    editor = editor_of(client)
    before = len(editor.applied)
    actions = await code_actions(client, uri)
    preset = next(a for a in actions if a.title == "Add docstrings")
    assert preset.data["version"] == 1
    typed = SAMPLE.replace("PI = math.pi", "PI = 3.14159")
    change_text(client, uri, typed)  # version 2, before the action is chosen
    stale = "the document changed since the code action was offered: select the code again"
    shown = len(client.messages)

    resolved = await client.code_action_resolve_async(preset)
    assert resolved.edit is None
    assert [(m.type, m.message) for m in client.messages[shown:]] == [
        (types.MessageType.Warning, f"specedit: {stale}")]

    with pytest.raises(JsonRpcException) as refused:
        await client.protocol.send_request_async("specedit/rewrite", {
            "textDocument": {"uri": uri}, "range": range_json(lines_range(*AREA)),
            "instruction": "Add docstrings", "version": 1})
    assert refused.value.code == -32801  # ContentModified
    assert stale in str(refused.value)

    result = await execute(client, {**preset.data})
    assert result == {"applied": False, "reason": f"specedit: {stale}"}
    assert len(editor.applied) == before
    assert text_of(client, uri) == typed


async def test_an_edit_for_a_version_the_editor_has_left_is_not_applied(
        client: LanguageClient):
    """The user typed and the change is still on its way when the rewrite is applied: the
    server's copy matches its version, the editor's does not. A versioned edit lets the
    editor refuse it; the server then says so instead of reporting it applied."""
    uri = new_doc(client)
    editor = editor_of(client)
    text, version = editor.docs[uri]
    editor.docs[uri] = (text, version + 1)  # a didChange the server has not read yet
    result = await execute(client, {"uri": uri, "range": range_json(lines_range(*AREA)),
                                    "instruction": "Add comments"})
    if client_supports_versioned_edits(client):
        assert result["applied"] is False, result
        assert result["reason"] == (f"specedit: the editor did not apply the rewrite: {uri} is "
                                    f"at version {version + 1}, the edit is for version "
                                    f"{version}")
        assert text_of(client, uri) == SAMPLE
    else:  # plain `changes` carry no version: an editor without documentChanges cannot tell
        assert result["applied"] is True, result


def client_supports_versioned_edits(client: LanguageClient) -> bool:
    workspace = client.capabilities.workspace if client.capabilities else None
    return bool(workspace and workspace.workspace_edit
                and workspace.workspace_edit.document_changes)


async def test_bad_model_reports_error_and_keeps_serving(
        client: LanguageClient, server_settings: dict[str, Any], reference: Reference):
    editor = editor_of(client)
    seen_statuses, seen_messages = len(editor.statuses), len(client.messages)
    await configure(client, {**server_settings, "model": "/nonexistent/specedit-model"})
    await wait_for(lambda: [s for s in editor.statuses[seen_statuses:] if s["state"] == "error"],
                   what="specedit/status error")
    errors = await wait_for(lambda: [m for m in client.messages[seen_messages:]
                                     if m.type == types.MessageType.Error])
    assert "specedit.model" in errors[0].message
    assert any("not found" in m.message for m in client.log_messages)

    # Still serving: code actions, and rewrites that say what is wrong.
    uri = new_doc(client)
    actions = await code_actions(client, uri)
    assert actions
    result = await execute(client, {"uri": uri, "range": range_json(lines_range(*AREA)),
                                    "instruction": "Add comments"})
    assert result["applied"] is False and "not found" in result["reason"]

    # A good model again: it loads and rewrites.
    seen_statuses = len(editor.statuses)
    await configure(client, server_settings)
    await wait_for(lambda: [s for s in editor.statuses[seen_statuses:] if s["state"] == "ready"])
    result = await execute(client, {"uri": uri, "range": range_json(lines_range(*AREA)),
                                    "instruction": "Add comments"})
    assert result["applied"] is True, result
    assert text_of(client, uri) == reference.document_after(SAMPLE, *AREA, "Add comments")
