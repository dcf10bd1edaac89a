"""Partial results over stdio: `specedit/rewrite` with a `partialResultToken` streams the
rewritten region as `$/progress` notifications before its response (lsp_server/README.md).

One real server (VS Code's capabilities) serves every test in this module.
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

from lsp_server.worker import STREAM_INTERVAL
from tests.helpers.lsp import (
    SAMPLE,
    TEST_SETTINGS,
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
AREA = (8, 10)  # lines [8, 10): the body of area(), 0-based
INSTRUCTION = "Add comments"
# Greedy, one token a pass: a hundred-odd passes give several reports (the tiny model's
# output for this selection ends after 332 tokens).
STREAM = {**TEST_SETTINGS, "method": "greedy", "maxNewTokens": 120}
SLOW = {**TEST_SETTINGS, "method": "greedy", "maxNewTokens": 3000}
PARTIAL_KEYS = {"uri", "range", "version", "text", "covered", "outputTokens", "forwardPasses",
                "elapsedSeconds"}


@pytest_lsp.fixture(scope="module",
                    config=ClientServerConfig(server_command=SERVER, client_factory=make_client))
async def client(lsp_client: LanguageClient, server_settings: dict[str, Any]):
    status = await start_session(lsp_client, {**server_settings, **STREAM})
    assert status[0]["state"] == "ready", status
    yield
    await lsp_client.shutdown_session()


_docs = 0


def new_doc(client: LanguageClient) -> str:
    global _docs
    _docs += 1
    uri = f"file:///tmp/specedit-stream/doc{_docs}.py"
    open_doc(client, uri, SAMPLE)
    return uri


def area_range() -> dict[str, Any]:
    return {"start": {"line": AREA[0], "character": 0}, "end": {"line": AREA[1], "character": 0}}


def rewrite_params(uri: str, **extra: Any) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "range": area_range(), "instruction": INSTRUCTION,
            **extra}


def region_after(reference: Reference, settings: dict[str, Any]) -> str:
    """The selected lines as the engine rewrites them (with the region's final newline)."""
    lines = SAMPLE.splitlines(keepends=True)
    after = reference.document_after(SAMPLE, *AREA, INSTRUCTION, settings)
    before, rest = "".join(lines[:AREA[0]]), "".join(lines[AREA[1]:])
    return after[len(before):len(after) - len(rest)]


async def test_partial_results_stream_the_rewrite(client: LanguageClient, reference: Reference):
    uri = new_doc(client)
    token = f"partial-{uri}"
    response = plain(await client.protocol.send_request_async(
        "specedit/rewrite", rewrite_params(uri, partialResultToken=token)))
    partials = editor_of(client).partials[token]

    expected = region_after(reference, STREAM)
    # The response is what it is without partial results.
    assert apply_text_edits(SAMPLE, edits_for(response["edit"], uri)) == \
        reference.document_after(SAMPLE, *AREA, INSTRUCTION, STREAM)
    # Several states: at least one while decoding, then the final one.
    assert len(partials) >= 2, partials
    for value in partials:
        assert set(value) == PARTIAL_KEYS, value
        assert value["uri"] == uri and value["version"] == 1
        assert value["range"] == area_range()  # the whole lines rewritten
        assert value["covered"] is None  # greedy does not draft from the original
    texts = [p["text"] for p in partials]
    # Each state is a prefix of the next (whole text, not a delta); the last is the rewrite.
    for earlier, later in zip(texts, texts[1:], strict=False):
        assert later.startswith(earlier), (earlier, later)
    assert texts[-1] == expected
    assert len(set(texts)) == len(texts)  # only passes that changed the text are sent
    for key in ("outputTokens", "forwardPasses", "elapsedSeconds"):
        counts = [p[key] for p in partials]
        assert counts == sorted(counts), (key, counts)
    assert partials[0]["outputTokens"] < partials[-1]["outputTokens"]
    stats = response["stats"]
    assert partials[-1]["outputTokens"] == stats["outputTokens"]
    assert partials[-1]["forwardPasses"] == stats["forwardPasses"]
    # At most 20 a second by the server's own clock: one at the first pass, then one per
    # STREAM_INTERVAL at most, then the final state.
    assert STREAM_INTERVAL >= 1 / 20
    assert len(partials) <= partials[-1]["elapsedSeconds"] / STREAM_INTERVAL + 2, (
        len(partials), partials[-1]["elapsedSeconds"])


async def test_speculative_partial_results_report_coverage(
        client: LanguageClient, reference: Reference, server_settings: dict[str, Any]):
    settings = {**STREAM, "method": "speculative"}
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"specedit": {**server_settings, **settings}}))
    try:
        uri = new_doc(client)
        token = 7  # an integer token works as well as a string
        await client.protocol.send_request_async(
            "specedit/rewrite", rewrite_params(uri, partialResultToken=token))
    finally:
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"specedit": {**server_settings, **STREAM}}))
    partials = editor_of(client).partials[token]
    assert partials[-1]["text"] == region_after(reference, settings)
    covered = [p["covered"] for p in partials]
    assert all(c is not None and 0.0 <= c <= 1.0 for c in covered), covered
    assert covered == sorted(covered)


async def test_no_partial_results_without_a_token(client: LanguageClient,
                                                  reference: Reference):
    uri = new_doc(client)
    streams = dict(editor_of(client).partials)
    known = set(client.progress_reports)
    client.progress_reports[f"work-{uri}"] = []  # the client's own token, known to it
    # A work-done token alone gives work-done progress, and no partial results.
    response = plain(await client.protocol.send_request_async(
        "specedit/rewrite", rewrite_params(uri, workDoneToken=f"work-{uri}")))
    assert apply_text_edits(SAMPLE, edits_for(response["edit"], uri)) == \
        reference.document_after(SAMPLE, *AREA, INSTRUCTION, STREAM)
    assert editor_of(client).partials == streams
    assert set(client.progress_reports) - known == {f"work-{uri}"}
    assert client.progress_reports[f"work-{uri}"]


async def test_bad_partial_result_token_is_refused(client: LanguageClient):
    uri = new_doc(client)
    with pytest.raises(JsonRpcException) as failure:
        await client.protocol.send_request_async(
            "specedit/rewrite", rewrite_params(uri, partialResultToken={"not": "a token"}))
    assert failure.value.code == -32803
    assert "partialResultToken must be a string or an integer" in str(failure.value)


async def test_cancel_mid_stream_stops_the_engine(
        client: LanguageClient, server_settings: dict[str, Any]):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"specedit": {**server_settings, **SLOW}}))
    try:
        uri = new_doc(client)
        token, request_id = f"cancel-{uri}", f"cancel-request-{uri}"
        partials = editor_of(client).partials.setdefault(token, [])
        pending = asyncio.ensure_future(client.protocol.send_request_async(
            "specedit/rewrite", rewrite_params(uri, partialResultToken=token),
            msg_id=request_id))
        await wait_for(lambda: partials, what="a partial result")
        assert not pending.done()
        client.cancel_request(types.CancelParams(id=request_id))
        with pytest.raises(JsonRpcException) as failure:
            await asyncio.wait_for(pending, 60)
        assert failure.value.code == -32800  # RequestCancelled
        sent = len(partials)
        # A round trip later nothing more has come: the engine stopped, and a cancelled
        # rewrite sends no final state.
        await client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=types.Position(line=AREA[0], character=0),
                              end=types.Position(line=AREA[1], character=0)),
            context=types.CodeActionContext(diagnostics=[])))
        assert len(partials) == sent
        assert partials[-1]["outputTokens"] < SLOW["maxNewTokens"]
    finally:
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"specedit": {**server_settings, **STREAM}}))
    # The server keeps serving: the next streamed rewrite completes.
    uri = new_doc(client)
    token = f"after-cancel-{uri}"
    await client.protocol.send_request_async(
        "specedit/rewrite", rewrite_params(uri, partialResultToken=token))
    assert editor_of(client).partials[token]
