"""The client side: one streamed chat completion from any OpenAI-compatible endpoint.

Used by the language server's remote engine and by `specedit bench --endpoint`. httpx with
server-sent events parsed by hand (the `openai` package is not a dependency of the server);
imports no torch. Cancelling the coroutine closes the stream, which is how a server (ours,
vLLM) learns to stop decoding.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from engine.contract import DEFAULT_ENDPOINT_TIMEOUT, EndpointError


@dataclass(frozen=True)
class Endpoint:
    """Where to send chat completions: the base URL OpenAI's clients take (.../v1)."""

    base_url: str
    model: str
    api_key: str | None = None  # read from the environment by the caller, never from settings
    key_env: str | None = None  # the variable it came from, named in errors about the key
    timeout: float = DEFAULT_ENDPOINT_TIMEOUT  # to connect, and at most between two chunks

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def normalise_base_url(url: str) -> str:
    """The base URL without a trailing slash; a bare host gets OpenAI's `/v1`.

    Raises ValueError with a one-line reason for anything that is not an http(s) URL.
    """
    url = url.strip().rstrip("/")
    parsed = httpx.URL(url) if url else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{url!r} is not an http:// or https:// URL "
                         "(e.g. http://gpu-box:8000/v1)")
    return url if parsed.path not in ("", "/") else f"{url}/v1"


@dataclass
class ChatReply:
    """What came back: the text, and what the server said about it."""

    text: str
    finish_reason: str | None  # None: the stream was closed before the server finished
    usage: dict[str, Any] | None = None
    speculative: dict[str, Any] | None = None  # `specedit api`'s extension: forward passes
    chunks: int = 0  # streamed pieces that carried text
    wall_seconds: float = 0.0
    request: dict[str, Any] = field(default_factory=dict, repr=False)


def _error_line(response_text: str) -> tuple[str, str | None]:
    """OpenAI's {"error": {"message", "param"}} (or FastAPI's {"detail"}), as one line."""
    try:
        data = json.loads(response_text)
    except ValueError:
        return response_text.strip().splitlines()[0][:300] if response_text.strip() else "", None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", "")).strip(), error.get("param")
    if isinstance(error, str):
        return error, None
    detail = data.get("detail") if isinstance(data, dict) else None
    return (str(detail) if detail is not None else response_text.strip()[:300]), None


def _http_error(endpoint: Endpoint, status: int, text: str) -> EndpointError:
    message, param = _error_line(text)
    line = f"the endpoint {endpoint.base_url} answered {status}" + (f": {message}" if message
                                                                      else "")
    if status in (401, 403):
        where = endpoint.key_env or "the key's environment variable"
        line += (f" (the key comes from ${where} in the server's environment: "
                 + ("it is unset" if not endpoint.api_key else "check its value") + ")")
    elif status == 404:
        line += (f" (check the endpoint, the base URL OpenAI clients use, usually ending in "
                 f"/v1, and the model name {endpoint.model!r})")
    return EndpointError(line, status=status, param=param)


def rejected_field(error: EndpointError, fields: tuple[str, ...]) -> str | None:
    """Which of `fields` a 400/422 refusal blames (by its `param`, else by its message)."""
    if error.status not in (400, 422):
        return None
    for name in fields:
        if error.param == name or (error.param and error.param.startswith(f"{name}.")):
            return name
    text = str(error).lower()
    return next((name for name in fields if name.lower() in text), None)


async def stream_chat(client: httpx.AsyncClient, endpoint: Endpoint, body: Mapping[str, Any],
                      on_text: Callable[[str, int], bool | None] | None = None) -> ChatReply:
    """POST `body` (streamed) and read the answer; `on_text(text_so_far, chunks)` after each
    piece may return True to stop reading early (the stream is then closed)."""
    request = {**body, "model": endpoint.model, "stream": True,
               "stream_options": {"include_usage": True}}
    timeout = httpx.Timeout(endpoint.timeout)
    reply = ChatReply(text="", finish_reason=None, request=request)
    pieces: list[str] = []
    started = time.perf_counter()
    try:
        async with client.stream("POST", endpoint.chat_url, json=request,
                                 headers=endpoint.headers(), timeout=timeout) as response:
            if response.status_code != 200:
                await response.aread()
                raise _http_error(endpoint, response.status_code, response.text)
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # comments, event names, blank separators
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise EndpointError(f"the endpoint {endpoint.base_url} sent a stream "
                                        f"event that is not JSON: {data[:80]!r}") from None
                if "error" in chunk:  # an error after the stream began
                    message, param = _error_line(data)
                    raise EndpointError(f"the endpoint {endpoint.base_url} failed while "
                                        f"answering: {message}", param=param)
                if chunk.get("usage"):
                    reply.usage = chunk["usage"]
                if chunk.get("speculative"):
                    reply.speculative = chunk["speculative"]
                for choice in chunk.get("choices") or []:
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        pieces.append(content)
                        reply.chunks += 1
                        if on_text is not None and on_text("".join(pieces), reply.chunks):
                            reply.text = "".join(pieces)
                            reply.wall_seconds = time.perf_counter() - started
                            return reply  # leaving the block closes the stream
                    if choice.get("finish_reason"):
                        reply.finish_reason = choice["finish_reason"]
    except httpx.TimeoutException as exc:
        raise EndpointError(f"the endpoint {endpoint.base_url} sent nothing for "
                            f"{endpoint.timeout:g} s ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise EndpointError(f"cannot reach the endpoint {endpoint.base_url}: "
                            f"{type(exc).__name__}: {exc or 'connection failed'}") from exc
    reply.text = "".join(pieces)
    reply.wall_seconds = time.perf_counter() - started
    return reply


async def list_models(client: httpx.AsyncClient, endpoint: Endpoint) -> list[dict[str, Any]]:
    """GET /models: what the endpoint serves (a cheap check of the URL and the key)."""
    try:
        response = await client.get(f"{endpoint.base_url}/models", headers=endpoint.headers(),
                                    timeout=httpx.Timeout(endpoint.timeout))
    except httpx.HTTPError as exc:
        raise EndpointError(f"cannot reach the endpoint {endpoint.base_url}: "
                            f"{type(exc).__name__}: {exc or 'connection failed'}") from exc
    if response.status_code != 200:
        raise _http_error(endpoint, response.status_code, response.text)
    try:
        data = response.json().get("data") or []
    except (ValueError, AttributeError):
        data = []
    return [m for m in data if isinstance(m, dict)]
