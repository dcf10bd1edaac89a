"""`specedit api` end to end: the official `openai` client against a real server process.

One server (tests/engine/api/conftest.py) runs for the whole session, with an API key, a queue
of one, a 64 KiB body limit and short deadlines, so that every refusal can be provoked.
Cancellation is checked by counting forward passes (the server's /health reports them), never
by timing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import openai
import pytest

import engine
from engine.contract import API_MAX_MESSAGES
from engine.decode.proposers import PromptLookupProposer
from engine.decode.runner import ModelRunner
from engine.decode.stopping import StopTokens
from engine.rewriting.completion import (
    CompletionSettings,
    chat_prompt,
    complete,
    prediction_ids,
)
from engine.rewriting.prompt import rewrite_messages  # as remote_rewrite sends it
from tests.engine.api.conftest import API_KEY, MAX_BODY, ApiServer
from tests.helpers.reference import greedy_reference

LONG = 3500  # tokens a long job asks for (the tiny model's context is 4096)
MESSAGES = [{"role": "user", "content": "def add(a, b):\n    return a + b\n"}]


@pytest.fixture(scope="module")
def client(api_server: ApiServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=api_server.v1, api_key=API_KEY, max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def local(tiny_chat_model_dir: Path) -> engine.LoadedModel:
    """The same model in this process: the reference the server's answers must equal."""
    return engine.load_model(str(tiny_chat_model_dir), "cpu", "float32")


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def start_long_stream(client: openai.OpenAI, model: str) -> Any:
    """A streamed request that would run for LONG tokens; returns once it has produced text."""
    stream = client.chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=LONG, temperature=0, stream=True,
        extra_body={"ignore_eos": True})
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            return stream
    raise AssertionError("the long stream ended before producing text")


def open_request(api_server: ApiServer, body: dict[str, Any]) -> socket.socket:
    """Send a chat completion request on a raw socket, to hang up on it later at will."""
    url = urlparse(api_server.base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=60)
    data = json.dumps(body).encode()
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
                 b"Content-Type: application/json\r\nAuthorization: Bearer "
                 + API_KEY.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
    return sock


def test_models_and_health(api_server: ApiServer, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == [api_server.model]
    health = api_server.health()
    assert health["status"] == "ok" and health["model"] == api_server.model


def test_greedy_answer_equals_engine_rewrite(api_server: ApiServer, client: openai.OpenAI,
                                            local: engine.LoadedModel) -> None:
    code, instruction = "def add(a, b):\n    return a + b\n", "Add type hints"
    expected = engine.rewrite(local, code, instruction, language="python",
                              method="speculative", max_new_tokens=24)
    decoded = local.tokenizer.decode(expected.output_ids, skip_special_tokens=True)
    assert "```" not in decoded, "the rewrite hit its closing fence; the API would not stop"
    # The rewrite prompt as messages: it ends inside the assistant's turn, after the fence.
    wording = rewrite_messages(code, instruction, language="python")  # the default format
    messages = [*wording.chat(), {"role": "assistant", "content": wording.primer}]
    answer = client.chat.completions.create(
        model=api_server.model, messages=messages, max_tokens=24, temperature=0,
        prediction={"type": "content", "content": wording.answer},
        extra_body={"continue_final_message": True, "add_generation_prompt": False})
    assert answer.choices[0].message.content == decoded
    assert answer.usage.prompt_tokens == expected.stats.prompt_tokens
    assert answer.usage.completion_tokens == expected.stats.output_tokens
    # Same draft, same loop: the same number of forward passes as the rewrite.
    assert answer.model_extra["speculative"]["forward_passes"] == expected.stats.forward_passes

    pieces, finish, usage = [], None, None
    for chunk in client.chat.completions.create(
            model=api_server.model, messages=messages, max_tokens=24, temperature=0,
            prediction={"type": "content", "content": wording.answer}, stream=True,
            stream_options={"include_usage": True},
            extra_body={"continue_final_message": True, "add_generation_prompt": False}):
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(pieces) == decoded
    assert finish == answer.choices[0].finish_reason
    assert usage is not None and usage.completion_tokens == answer.usage.completion_tokens


def test_accepted_and_rejected_prediction_tokens(api_server: ApiServer, client: openai.OpenAI,
                                                 local: engine.LoadedModel) -> None:
    tok, n, tail = local.tokenizer, 6, " import sys"
    # A conversation whose greedy answer survives decoding and re-tokenising (a random
    # model's answer may split a UTF-8 character), so that the prediction is that answer.
    for i in range(30):
        messages = [{"role": "user", "content": f"print({i})"}]
        prompt = chat_prompt(tok, messages)
        answer = greedy_reference(ModelRunner(local.model), prompt.ids,
                                  StopTokens(frozenset()), n).tokens
        text = tok.decode(answer)
        predicted = prediction_ids(tok, prompt, text + tail)
        if predicted[:n] == answer and len(predicted) > n:
            break
    else:
        pytest.fail("no conversation with a re-tokenisable greedy answer")
    result = client.chat.completions.create(
        model=api_server.model, messages=messages, max_tokens=n, temperature=0,
        prediction={"type": "content", "content": text + tail},
        extra_body={"ignore_eos": True})
    assert result.choices[0].message.content == text
    details = result.usage.completion_tokens_details
    assert details.accepted_prediction_tokens == n
    assert details.rejected_prediction_tokens == len(predicted) - n
    assert result.model_extra["speculative"]["forward_passes"] == 1

    unrelated = "zzzz qqqq"
    unrelated_ids = prediction_ids(tok, prompt, unrelated)
    assert not set(unrelated_ids) & set(answer)
    result = client.chat.completions.create(
        model=api_server.model, messages=messages, max_tokens=n, temperature=0,
        prediction={"type": "content", "content": [{"type": "text", "text": unrelated}]},
        extra_body={"ignore_eos": True})
    assert result.choices[0].message.content == text
    details = result.usage.completion_tokens_details
    assert (details.accepted_prediction_tokens, details.rejected_prediction_tokens) == (
        0, len(unrelated_ids))


def test_sampling_over_http_is_the_engines_and_a_seed_reproduces_it(
        api_server: ApiServer, client: openai.OpenAI, local: engine.LoadedModel) -> None:
    """temperature, top_p and seed reach the sampler: each seed's answer is the one the
    engine samples in process with the same settings, seeds differ, a seed repeats."""
    prompt = chat_prompt(local.tokenizer, MESSAGES)

    def ask(seed: int, temperature: float = 1.0, top_p: float = 0.95) -> str:
        return client.chat.completions.create(
            model=api_server.model, messages=MESSAGES, max_tokens=8, temperature=temperature,
            top_p=top_p, seed=seed, extra_body={"ignore_eos": True}).choices[0].message.content

    def here(seed: int, temperature: float = 1.0) -> str:
        return complete(local, ModelRunner(local.model), prompt, [], CompletionSettings(
            max_new_tokens=8, temperature=temperature, top_p=0.95, seed=seed,
            ignore_eos=True)).text

    answers = {seed: ask(seed) for seed in range(4)}
    assert answers == {seed: here(seed) for seed in range(4)}
    # Seeds differ: a server that decoded greedily whatever the temperature would fail here.
    assert len(set(answers.values())) > 1, answers
    assert ask(2) == answers[2]
    # And temperature 0 is greedy whatever the seed: one that always sampled would fail here.
    assert ask(0, temperature=0) == ask(1, temperature=0) == here(0, temperature=0)
    assert here(0, temperature=0) not in answers.values()
    # A temperature just above 0 is valid, and greedy in the limit (it was a 500: nan).
    assert ask(0, temperature=1e-320) == here(0, temperature=0)


def test_a_client_that_disconnects_cancels_its_job(api_server: ApiServer,
                                                   client: openai.OpenAI) -> None:
    before = api_server.health()
    stream = start_long_stream(client, api_server.model)
    stream.close()
    health = api_server.wait_for(
        lambda h: not h["running"] and h["completed"] > before["completed"],
        "the cancelled job to end")
    assert health["last_cancel"]["started"]
    assert health["last_cancel"]["passes_after_cancel"] <= 1
    # Prompt lookup drafts at most num_tokens a pass: the whole answer needs more passes.
    most = PromptLookupProposer([]).num_tokens
    assert health["forward_passes"] - before["forward_passes"] < LONG // most
    # The next request runs at once and alone: the server's passes are exactly its own.
    result = client.chat.completions.create(model=api_server.model, messages=MESSAGES,
                                            max_tokens=3, temperature=0)
    after = api_server.health()
    assert after["forward_passes"] - health["forward_passes"] == (
        result.model_extra["speculative"]["forward_passes"])


def test_more_clients_than_the_queue_holds_get_429(api_server: ApiServer,
                                                   client: openai.OpenAI) -> None:
    running = start_long_stream(client, api_server.model)
    waited: dict[str, Any] = {}

    def wait_in_queue() -> None:
        waited["result"] = client.chat.completions.create(
            model=api_server.model, messages=MESSAGES, max_tokens=2, temperature=0)

    waiter = threading.Thread(target=wait_in_queue)
    waiter.start()
    try:
        api_server.wait_for(lambda h: h["waiting"] == 1, "the second request to queue")
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model=api_server.model, messages=MESSAGES,
                                           max_tokens=2, temperature=0)
        assert refused.value.status_code == 429
        assert int(refused.value.response.headers["retry-after"]) >= 1
        assert refused.value.body["type"] == "rate_limit_exceeded"
    finally:
        running.close()
        waiter.join(timeout=300)
    assert waited["result"].choices[0].finish_reason in ("stop", "length")
    assert api_server.health()["status"] == "ok"


def test_a_body_over_the_limit_gets_413(api_server: ApiServer) -> None:
    url = f"{api_server.v1}/chat/completions"
    headers = {**auth(), "Content-Type": "application/json"}
    big = httpx.post(url, headers=headers, content=b" " * (MAX_BODY + 1), timeout=60)
    assert big.status_code == 413
    assert big.json()["error"]["code"] == "request_too_large"
    # Without a Content-Length (chunked), the limit holds as the body arrives.
    chunked = httpx.post(url, headers=headers, timeout=60,
                         content=iter([b" " * (MAX_BODY // 2)] * 3))
    assert chunked.status_code == 413
    assert api_server.health()["status"] == "ok"


def test_a_prompt_over_the_context_gets_400(api_server: ApiServer,
                                            client: openai.OpenAI) -> None:
    huge = [{"role": "user", "content": "x = 1; " * 8000}]  # under the body limit
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=api_server.model, messages=huge, max_tokens=4)
    assert refused.value.code == "context_length_exceeded"
    assert "context" in refused.value.message
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=api_server.model, messages=MESSAGES,
                                       max_tokens=5000)
    assert refused.value.code == "context_length_exceeded"
    assert "max_tokens" in refused.value.message


def test_bad_requests_get_openai_errors(api_server: ApiServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=api_server.model, messages=MESSAGES,
                                       temperature=5)
    assert bad.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=api_server.model, messages=MESSAGES, n=2)
    picture = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=api_server.model, messages=picture)
    assert "only text" in bad.value.message and bad.value.body["param"] == "messages[0].content"
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert missing.value.code == "model_not_found"
    page = httpx.get(f"{api_server.v1}/no-such-path", headers=auth(), timeout=30)
    assert page.status_code == 404 and "message" in page.json()["error"]
    broken = httpx.post(f"{api_server.v1}/chat/completions", timeout=30,
                        headers={**auth(), "Content-Type": "application/json"}, content=b"{")
    assert broken.status_code == 400 and broken.json()["error"]["type"]


def post_raw(api_server: ApiServer, body: dict[str, Any]) -> httpx.Response:
    """POST a body as JSON text with escapes (so that a lone surrogate travels as \\ud800)."""
    return httpx.post(f"{api_server.v1}/chat/completions", timeout=120,
                      headers={**auth(), "Content-Type": "application/json"},
                      content=json.dumps(body).encode())


def test_null_is_taken_where_openai_takes_it(api_server: ApiServer) -> None:
    nulls = {"temperature": None, "top_p": None, "n": None, "stream": None, "seed": None,
             "stop": None, "max_completion_tokens": None, "stream_options": None,
             "prediction": None, "frequency_penalty": None, "presence_penalty": None,
             "logit_bias": None, "logprobs": None, "top_logprobs": None,
             "response_format": None, "reasoning_effort": None}
    answer = post_raw(api_server, {"model": api_server.model, "messages": MESSAGES,
                                   "max_tokens": 2, "ignore_eos": True, **nulls})
    assert answer.status_code == 200, answer.text
    assert answer.json()["object"] == "chat.completion"  # null stream: not streamed


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_values_get_400_never_500(api_server: ApiServer, stream: bool) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"seed": 2**64}, "seed"),
        ({"seed": -(2**63) - 1}, "seed"),
        ({"messages": [{"role": "user", "content": "def f():\ud800"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "\udfff"}]}]},
         "messages[0].content[0].text"),
        ({"prediction": {"type": "content", "content": "x\ud800y"}}, "prediction.content"),
        ({"stop": ["a", "\ud83d"]}, "stop[1]"),
        ({"model": "\ud800"}, "model"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ]
    for change, param in bad:
        body = {"model": api_server.model, "messages": MESSAGES, "max_tokens": 2,
                "stream": stream, **change}
        answer = post_raw(api_server, body)
        # Refused before any stream starts: a 400, not a 200 and then an error event.
        assert answer.status_code == 400, (change, answer.text)
        error = answer.json()["error"]
        assert error["param"] is not None and error["param"].startswith(param), (change, error)
        assert error["type"] == "invalid_request_error"
        assert "Error" not in error["message"] and "Traceback" not in error["message"]
    assert api_server.health()["status"] == "ok"


def test_fields_that_would_change_the_answer_are_refused_by_name(
        api_server: ApiServer, client: openai.OpenAI) -> None:
    refused: dict[str, Any] = {
        "frequency_penalty": 0.5, "presence_penalty": -1.0, "logit_bias": {"5": 100},
        "response_format": {"type": "json_object"}, "logprobs": True, "top_logprobs": 2,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "tool_choice": "required", "functions": [{"name": "f", "parameters": {}}],
        "function_call": {"name": "f"}, "modalities": ["text", "audio"],
        "reasoning_effort": "high", "top_k": 5, "repetition_penalty": 1.2,
    }
    for name, value in refused.items():
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(model=api_server.model, messages=MESSAGES,
                                           max_tokens=1, extra_body={name: value})
        assert bad.value.body["param"] == name, (name, bad.value.body)
        assert name in bad.value.message
    history = [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=api_server.model, max_tokens=1,
                                       messages=[*MESSAGES, *history])
    assert bad.value.body["param"] == "messages[1].tool_calls"
    # Their neutral values change nothing and are taken, as are fields that change nothing.
    neutral = {"frequency_penalty": 0, "presence_penalty": 0.0, "logit_bias": {},
               "response_format": {"type": "text"}, "logprobs": False, "tools": [],
               "tool_choice": "none", "modalities": ["text"], "user": "someone",
               "metadata": {"k": "v"}, "store": False, "service_tier": "auto"}
    answer = client.chat.completions.create(model=api_server.model, messages=MESSAGES,
                                            max_tokens=1, extra_body=neutral)
    assert answer.choices[0].finish_reason in ("stop", "length")


def test_too_many_messages_are_refused_before_the_engine(api_server: ApiServer) -> None:
    before = api_server.health()
    many = [{"role": "user"}] * (API_MAX_MESSAGES + 1)  # about 33 KB: under the body limit
    answer = post_raw(api_server, {"model": api_server.model, "messages": many})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "messages"
    after = api_server.health()
    assert after["completed"] == before["completed"]  # no job: the engine never saw it
    assert f"{API_MAX_MESSAGES:,}" in answer.json()["error"]["message"]


def test_health_counts_failures_apart_from_cancels(api_server: ApiServer,
                                                   client: openai.OpenAI) -> None:
    before = api_server.health()
    # Under the server's rough character bound, over the context once tokenised: the
    # engine takes the job, and it fails.
    huge = [{"role": "user", "content": "x = 1; " * 8000}]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=api_server.model, messages=huge, max_tokens=4)
    assert refused.value.code == "context_length_exceeded"
    after = api_server.wait_for(lambda h: h["completed"] > before["completed"],
                                "the failed job to be counted")
    assert after["failures"] == before["failures"] + 1
    assert after["cancels"] == before["cancels"]


def test_a_missing_or_wrong_key_gets_401(api_server: ApiServer) -> None:
    wrong = openai.OpenAI(base_url=api_server.v1, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        wrong.chat.completions.create(model=api_server.model, messages=MESSAGES)
    assert refused.value.status_code == 401
    bare = httpx.get(f"{api_server.v1}/models", timeout=30)
    assert bare.status_code == 401 and bare.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{api_server.base_url}/health", timeout=30).status_code == 200


@pytest.mark.parametrize("argv", [["--host", "0.0.0.0"],
                                  ["--api-key-env", "SPECEDIT_TEST_UNSET_KEY"]])
def test_refuses_to_start_open_or_with_an_empty_key(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "api", "--model", "unused",
                           *argv], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items()
                               if k != "SPECEDIT_TEST_UNSET_KEY"})
    assert proc.returncode == 2
    assert "--api-key-env" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_hanging_up_on_a_plain_request_cancels_it(api_server: ApiServer) -> None:
    before = api_server.health()
    sock = open_request(api_server, {"model": api_server.model, "messages": MESSAGES,
                                     "max_tokens": LONG, "temperature": 0, "ignore_eos": True})
    api_server.wait_for(lambda h: h["running"], "the request to start")
    sock.close()
    health = api_server.wait_for(
        lambda h: not h["running"] and h["completed"] > before["completed"],
        "the cancelled job to end")
    assert health["last_cancel"]["started"]
    # Not streamed: the hang-up is noticed between polls, so a few passes may run; far
    # fewer than the whole answer.
    most = PromptLookupProposer([]).num_tokens
    assert health["forward_passes"] - before["forward_passes"] < LONG // most


def test_a_waiting_request_that_hangs_up_never_starts(api_server: ApiServer,
                                                      client: openai.OpenAI) -> None:
    running = start_long_stream(client, api_server.model)
    try:
        before = api_server.health()
        sock = open_request(api_server, {"model": api_server.model, "messages": MESSAGES,
                                         "max_tokens": 2, "temperature": 0})
        api_server.wait_for(lambda h: h["waiting"] == 1, "the request to queue")
        sock.close()
        # The server notices a hang-up by polling: end the running job only once the waiting
        # one is known to be cancelled, else it may start first on a busy machine.
        api_server.wait_for(lambda h: h["cancels"] > before["cancels"],
                            "the hang-up to be noticed")
    finally:
        running.close()
    health = api_server.wait_for(
        lambda h: h["completed"] >= before["completed"] + 2 and not h["waiting"],
        "both jobs to end")
    assert health["last_cancel"] == {"passes_after_cancel": 0, "started": False}
