"""The language server on a remote engine: `specedit.endpoint` pointed at a real `specedit api`
process (the tiny model, float32 on the CPU), the server itself over stdio.

The endpoint that refuses `prediction` is a tiny FastAPI app served by uvicorn on 127.0.0.1
in this process: a real HTTP server whose answers are scripted, since no real server refuses
`prediction` offline.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_server.actions import COMMAND
from tests.helpers.api_server import ApiServer, free_port, running_api_server
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
    text_of,
    tokens_reported,
    wait_for,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "remote-test-key-not-secret"
API_KEY_ENV = "SPECEDIT_TEST_API_KEY"  # what `specedit api` checks against
RIGHT_KEY_ENV = "SPECEDIT_TEST_RIGHT_KEY"  # in the language server's environment
WRONG_KEY_ENV = "SPECEDIT_TEST_WRONG_KEY"
UNSET_KEY_ENV = "SPECEDIT_TEST_UNSET_KEY"
SERVER_ENV = {**{k: v for k, v in os.environ.items() if k != UNSET_KEY_ENV},
              RIGHT_KEY_ENV: KEY, WRONG_KEY_ENV: "not-the-key"}

AREA = (8, 10)  # the body of area(), 0-based lines [8, 10)
INSTRUCTION = "Add docstrings"


def lines_range(first: int, end: int) -> dict[str, Any]:
    return {"start": {"line": first, "character": 0}, "end": {"line": end, "character": 0}}


# -- the endpoints ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    log = tmp_path_factory.mktemp("remote-api") / "server.log"
    with running_api_server(tiny_model_dir, log, {API_KEY_ENV: KEY},
                            ["--api-key-env", API_KEY_ENV]) as server:
        yield server


SCRIPTED_MODEL = "scripted"
SCRIPTED_PIECES = ["    r2 = radius ** 2\n", "    return PI * r2\n", "```"]


class RefusingEndpoint:
    """Refuses any request with `prediction` (400, as OpenAI does for models without it);
    answers the others with a scripted stream. Records every request body."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": SCRIPTED_MODEL, "object": "model"}]}

        @app.post("/v1/chat/completions", response_model=None)
        async def chat(request: Request) -> JSONResponse | StreamingResponse:
            body = await request.json()
            self.requests.append(body)
            if "prediction" in body:
                return JSONResponse({"error": {
                    "message": "Predicted outputs are not supported with this model",
                    "type": "invalid_request_error", "param": "prediction", "code": None}},
                    status_code=400)

            async def events() -> Any:
                for piece in SCRIPTED_PIECES:
                    yield _chunk({"content": piece}, None)
                yield _chunk({}, "stop")
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def v1(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _chunk(delta: dict[str, Any], finish: str | None) -> str:
    return "data: " + json.dumps({"id": "x", "object": "chat.completion.chunk", "created": 0,
                                  "model": SCRIPTED_MODEL, "choices": [
                                      {"index": 0, "delta": delta, "finish_reason": finish}]}
                                 ) + "\n\n"


@pytest.fixture(scope="module")
def refusing() -> Iterator[RefusingEndpoint]:
    endpoint = RefusingEndpoint()
    endpoint.thread.start()
    deadline = time.monotonic() + 60
    while not endpoint.server.started:
        assert time.monotonic() < deadline, "the refusing endpoint did not start"
        time.sleep(0.05)
    yield endpoint
    endpoint.server.should_exit = True
    endpoint.thread.join(30)


# -- the language server ----------------------------------------------------------------------

def remote_settings(tiny_model_dir: Path, api: ApiServer, **overrides: Any) -> dict[str, Any]:
    return {"model": str(tiny_model_dir), **TEST_SETTINGS, "endpoint": api.v1,
            "endpointModel": api.model, "endpointKeyEnv": RIGHT_KEY_ENV, **overrides}


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "lsp_server", "--stdio"],
    client_factory=make_client, server_env=SERVER_ENV))
async def client(lsp_client: LanguageClient, api: ApiServer, tiny_model_dir: Path):
    # The remote engine checks the endpoint (GET /models with the key) instead of loading.
    status = await start_session(lsp_client, remote_settings(tiny_model_dir, api))
    assert status[0]["state"] == "ready", status
    yield
    await lsp_client.shutdown_session()


async def configure(client: LanguageClient, settings: dict[str, Any]) -> None:
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"specedit": settings}))


_docs = 0


def new_doc(client: LanguageClient) -> str:
    global _docs
    _docs += 1
    uri = f"file:///tmp/specedit-remote-test/doc{_docs}.py"
    open_doc(client, uri, SAMPLE)
    return uri


async def rewrite(client: LanguageClient, uri: str, msg_id: str | None = None) -> Any:
    return await client.protocol.send_request_async("specedit/rewrite", {
        "textDocument": {"uri": uri}, "range": lines_range(*AREA), "instruction": INSTRUCTION},
        msg_id=msg_id)


def without_special_tokens(text: str, reference: Reference) -> str:
    """The endpoint's text skips special tokens, as OpenAI's API does; the in-process text
    keeps any the model wrote (the tiny random model writes some; real ones do not in code)."""
    tokenizer = reference.loaded.tokenizer
    for token in tokenizer.added_tokens_decoder.values():
        if token.special:
            text = text.replace(token.content, "")
    return text


# -- tests ------------------------------------------------------------------------------------

async def test_a_rewrite_through_the_endpoint_is_the_in_process_rewrite(
        client: LanguageClient, api: ApiServer, reference: Reference):
    uri = new_doc(client)
    passes_before = api.health()["forward_passes"]
    result = plain(await rewrite(client, uri))
    expected = without_special_tokens(
        reference.document_after(SAMPLE, *AREA, INSTRUCTION), reference)
    assert apply_text_edits(SAMPLE, edits_for(result["edit"], uri)) == expected
    stats = result["stats"]
    assert stats["method"] == "remote" and stats["model"] == api.model
    # The passes are the endpoint's own count (its `speculative` extension): exactly the
    # passes its engine made for this request.
    assert stats["forwardPasses"] == api.health()["forward_passes"] - passes_before > 0
    assert 0 < stats["outputTokens"] <= TEST_SETTINGS["maxNewTokens"]

    # The command applies it as a versioned edit, as with the in-process engine.
    applied = len(editor_of(client).applied)
    answer = plain(await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=COMMAND, arguments=[{"uri": uri, "range": lines_range(*AREA),
                                     "instruction": INSTRUCTION}])))
    assert answer["applied"] is True
    assert text_of(client, uri) == expected
    [edit] = editor_of(client).applied[applied:]
    [change] = edit.edit.document_changes
    assert change.text_document.version == 1


async def test_cancel_closes_the_stream_and_the_endpoint_stops(
        client: LanguageClient, api: ApiServer, tiny_model_dir: Path):
    # Greedy (no prediction) and room for thousands of tokens: runs until stopped.
    await configure(client, remote_settings(tiny_model_dir, api, method="greedy",
                                            maxNewTokens=3000))
    try:
        uri = new_doc(client)
        before = api.health()
        known = set(client.progress_reports)
        pending = asyncio.ensure_future(rewrite(client, uri, msg_id=f"cancel-{uri}"))
        # Partial progress comes from the stream: the endpoint is decoding.
        await wait_for(lambda: [t for t in tokens_reported(client) if t not in known],
                       what="progress of streamed tokens")
        client.cancel_request(types.CancelParams(id=f"cancel-{uri}"))
        with pytest.raises(JsonRpcException) as failure:
            await asyncio.wait_for(pending, 60)
        assert failure.value.code == -32800  # RequestCancelled
        health = api.wait_for(lambda h: not h["running"] and h["completed"] > before["completed"],
                              "the endpoint to drop the cancelled job")
        # Closing the stream cancelled the job there, within a pass of noticing.
        assert health["last_cancel"]["started"]
        assert health["last_cancel"]["passes_after_cancel"] <= 1
        assert health["forward_passes"] - before["forward_passes"] < 3000
        assert text_of(client, uri) == SAMPLE
    finally:
        await configure(client, remote_settings(tiny_model_dir, api))


async def test_an_endpoint_that_refuses_prediction_gets_one_retry_without_it(
        client: LanguageClient, api: ApiServer, refusing: RefusingEndpoint,
        tiny_model_dir: Path):
    await configure(client, remote_settings(tiny_model_dir, api, endpoint=refusing.v1,
                                            endpointModel=SCRIPTED_MODEL))
    try:
        uri = new_doc(client)
        logged = len(client.log_messages)
        result = plain(await rewrite(client, uri))
        lines = SAMPLE.splitlines(keepends=True)
        expected = "".join(lines[:AREA[0]]) + "".join(SCRIPTED_PIECES[:2]) + "".join(
            lines[AREA[1]:])
        assert apply_text_edits(SAMPLE, edits_for(result["edit"], uri)) == expected
        first, second = refusing.requests[-2:]
        assert first["prediction"]["content"].startswith(lines[AREA[0]])
        assert "prediction" not in second
        assert second["messages"] == first["messages"]  # the same prompt, fence primed
        assert second["continue_final_message"] is True
        retries = [m.message for m in client.log_messages[logged:]
                   if "refused `prediction`" in m.message]
        assert len(retries) == 1 and "retrying once without it" in retries[0]
    finally:
        await configure(client, remote_settings(tiny_model_dir, api))


@pytest.mark.parametrize("key_env, says", [(WRONG_KEY_ENV, "check its value"),
                                           (UNSET_KEY_ENV, "it is unset")])
async def test_a_wrong_or_missing_key_gives_a_clear_error(
        client: LanguageClient, api: ApiServer, tiny_model_dir: Path, key_env: str, says: str):
    await configure(client, remote_settings(tiny_model_dir, api, endpointKeyEnv=key_env))
    try:
        uri = new_doc(client)
        shown = len(client.messages)
        with pytest.raises(JsonRpcException) as failure:
            await rewrite(client, uri)
        message = str(failure.value)
        assert "401" in message and f"${key_env}" in message and says in message
        assert "\n" not in message.strip()
        assert any("401" in m.message and key_env in m.message
                   for m in client.messages[shown:])
        assert text_of(client, uri) == SAMPLE
    finally:
        await configure(client, remote_settings(tiny_model_dir, api))
    # The server keeps serving: the next rewrite through the endpoint works.
    result = plain(await rewrite(client, new_doc(client)))
    assert result["stats"]["method"] == "remote"


async def test_the_remote_engine_imports_no_torch() -> None:
    code = ("import sys, lsp_server.server, lsp_server.remote, engine.rewriting.remote\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
