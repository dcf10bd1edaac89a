"""The FastAPI app: OpenAI's chat completions (streamed or not), models and health.

Errors have OpenAI's shape, {"error": {"message", "type", "param", "code"}}, with OpenAI's
statuses: 400 bad request or prompt over the context, 401 missing or wrong key, 404 unknown
model or path, 408 body too slow, 413 body too large, 429 queue full (with Retry-After), 500
the server's own fault (its log has the details; the answer has none), 503 engine down or
shutting down. Nothing a request says names a file: the server reads and writes none on its
behalf.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.contract import InvalidRequestError, PromptTooLongError, RewriteCancelled, SpecEditError
from engine.decode.runner import ModelRunner
from engine.model.loading import LoadedModel
from engine.rewriting.completion import (
    CompletionResult,
    CompletionSettings,
    chat_prompt,
    check_fits,
    complete,
    prediction_ids,
)
from engine.rewriting.request import check_fits_roughly
from engine.rewriting.worker import QueueFull, ShuttingDown

from .jobs import Done, Failed, Job, JobQueue
from .schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    CompletionTokensDetails,
    Delta,
    ModelCard,
    ModelList,
    SpeculativeStats,
    Usage,
    content_text,
    error_json,
)


@dataclass(frozen=True)
class ApiSettings:
    model_name: str  # what clients put in `model`
    api_key: str | None
    max_queue: int
    max_body_bytes: int
    body_timeout: float  # seconds to send the body once the headers are in


_log = logging.getLogger("uvicorn.error")  # where uvicorn logs, so one log holds it all


class ErrorResponse(JSONResponse):
    """An error as ASCII JSON: whatever a request held, its error can always be written."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")


@dataclass
class Prepared:
    """Event: the prompt is tokenised and fits; decoding starts."""

    prompt_tokens: int


@dataclass
class TextPiece:
    """Event: more of the completion's text (streaming only)."""

    text: str


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status, message, type_, param, code)
        self.headers = headers

    def response(self) -> JSONResponse:
        return ErrorResponse(error_json(self.message, self.type, self.param, self.code),
                             status_code=self.status, headers=self.headers)


def api_error_of(exc: BaseException) -> ApiError:
    """The HTTP error for an exception raised while preparing or decoding.

    Anything else than the engine's own errors is the server's fault: logged with its
    traceback, and answered 500 without its text (which may name files or internals).
    """
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, PromptTooLongError):
        return ApiError(400, str(exc), param="messages", code="context_length_exceeded")
    if isinstance(exc, InvalidRequestError):
        return ApiError(400, str(exc), param=exc.field)
    if isinstance(exc, ShuttingDown):
        return ApiError(503, str(exc), "server_error", code="server_shutting_down")
    if isinstance(exc, RewriteCancelled):
        return ApiError(499, str(exc), code="cancelled")
    if isinstance(exc, SpecEditError):
        return ApiError(400, str(exc))
    _log.error("internal error while answering a request", exc_info=exc)
    return _internal_error()


def _internal_error() -> ApiError:
    return ApiError(500, "internal error: the server failed to answer this request (its log "
                    "has the details)", type_="server_error", code="internal_error")


class Guard:
    """API key, body size and body deadline, checked before the app reads a byte of the
    request's JSON.

    The body is read here, up to the limit, and handed on whole: a client that sends more
    (with or without a Content-Length) gets 413, one that has not sent all of it within
    `body_timeout` seconds gets 408, and the app never sees the request.
    """

    def __init__(self, app: ASGIApp, settings: ApiSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        if self.settings.api_key is not None and not _key_matches(
                headers.get("authorization", ""), self.settings.api_key):
            await ApiError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                           code="invalid_api_key").response()(scope, receive, send)
            return
        limit = self.settings.max_body_bytes
        too_large = ApiError(413, f"the request body is over the limit of {limit:,} bytes",
                             code="request_too_large")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await too_large.response()(scope, receive, send)
            return
        body = bytearray()

        async def read_body() -> bool:
            """True once the body is in; False when it is over the limit or the client left."""
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return False  # the client went away before sending its body
                body.extend(message.get("body", b""))
                if len(body) > limit:
                    await too_large.response()(scope, receive, send)
                    return False
                if not message.get("more_body", False):
                    return True

        deadline = self.settings.body_timeout
        try:
            if not await asyncio.wait_for(read_body(), deadline):
                return
        except asyncio.TimeoutError:  # not TimeoutError: Python 3.10 tells them apart
            await ApiError(408, f"the request body did not arrive within {deadline:g} s",
                           code="request_timeout", headers={"Connection": "close"}
                           ).response()(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _key_matches(authorization: str, key: str) -> bool:
    scheme, _, given = authorization.partition(" ")
    # Constant time: the comparison leaks nothing about how much of the key was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), key.encode())


class ServedModel:
    """The loaded model, its runner and the queue in front of them."""

    def __init__(self, loaded: LoadedModel, settings: ApiSettings) -> None:
        self.loaded = loaded
        self.settings = settings
        self.runner = ModelRunner(loaded.model)
        self.jobs = JobQueue(loaded, settings.max_queue, lambda: self.runner.forward_passes)
        self.started = int(time.time())

    def work_for(self, body: ChatCompletionRequest, stream: bool) -> Any:
        messages = [{"role": "system" if m.role == "developer" else m.role,
                     "content": content_text(m.content, f"messages[{i}].content")}
                    for i, m in enumerate(body.messages)]
        prediction = (content_text(body.prediction.content, "prediction.content")
                      if body.prediction is not None else "")
        chars = sum(len(m["content"]) for m in messages) + len(prediction)
        check_fits_roughly(chars, self.loaded.context_length, "the messages")
        settings = CompletionSettings(
            max_new_tokens=body.max_new_tokens, temperature=body.temperature,
            top_p=body.top_p, seed=body.seed, stop=body.stop_strings,
            ignore_eos=body.ignore_eos)
        tokenizer = self.loaded.tokenizer

        def work(should_stop: Any, emit: Any) -> CompletionResult:
            # Tokenising happens here, on the engine thread: the tokenizer is never used by
            # two threads at once, and a huge prompt does not stall the event loop.
            prompt = chat_prompt(tokenizer, messages,
                                 add_generation_prompt=body.add_generation_prompt,
                                 continue_final_message=body.continue_final_message)
            predicted = prediction_ids(tokenizer, prompt, prediction)
            check_fits(len(prompt.ids), settings.max_new_tokens, self.loaded.context_length)
            emit(Prepared(len(prompt.ids)))
            return complete(self.loaded, self.runner, prompt, predicted, settings,
                            on_text=(lambda text: emit(TextPiece(text))) if stream else None,
                            should_stop=should_stop)

        return work

    def health(self) -> dict[str, Any]:
        last = self.jobs.last_cancel
        return {
            "status": "ok" if self.jobs.alive else "engine stopped",
            "model": self.settings.model_name,
            "running": self.jobs.running,
            "waiting": self.jobs.waiting,
            "completed": self.jobs.completed,
            "cancels": self.jobs.cancels,
            "failures": self.jobs.failures,
            "forward_passes": self.runner.forward_passes,
            "last_cancel": None if last is None else {
                "passes_after_cancel": last.passes_after_cancel, "started": last.started},
        }


def _usage(result: CompletionResult) -> Usage:
    return Usage(
        prompt_tokens=result.stats.prompt_tokens,
        completion_tokens=result.stats.output_tokens,
        total_tokens=result.stats.prompt_tokens + result.stats.output_tokens,
        completion_tokens_details=CompletionTokensDetails(
            accepted_prediction_tokens=result.accepted_prediction_tokens,
            rejected_prediction_tokens=result.rejected_prediction_tokens))


def _speculative(result: CompletionResult) -> SpeculativeStats:
    return SpeculativeStats(forward_passes=result.stats.forward_passes,
                            drafted_tokens=result.stats.drafted_tokens,
                            accepted_draft_tokens=result.stats.accepted_tokens)


def _sse(data: dict[str, Any] | str) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


def create_app(served: ServedModel) -> FastAPI:
    app = FastAPI(title="specedit api", docs_url=None, redoc_url=None, openapi_url=None)
    name = served.settings.model_name

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(SpecEditError)
    async def _spec_error(_: Request, exc: SpecEditError) -> JSONResponse:
        return api_error_of(exc).response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ""  # as OpenAI names a place: messages[0].content
        for part in first.get("loc", ()):
            if isinstance(part, int):
                where += f"[{part}]"
            elif part != "body":
                where += f".{part}" if where else str(part)
        where = where or "body"
        return ApiError(400, f"{where}: {first.get('msg', 'invalid request')}",
                        param=where).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return ApiError(exc.status_code, str(exc.detail), type_).response()

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        # 500 without the exception's text; Starlette then re-raises it, and uvicorn logs it.
        return _internal_error().response()

    @app.get("/health")
    async def health() -> JSONResponse:
        data = served.health()
        return JSONResponse(data, status_code=200 if served.jobs.alive else 503)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return ModelList(data=[ModelCard(id=name, created=served.started)]).model_dump()

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict[str, Any]:
        if model_id != name:
            raise _unknown_model(model_id, name)
        return ModelCard(id=name, created=served.started).model_dump()

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatCompletionRequest,
                   request: Request) -> JSONResponse | StreamingResponse | dict[str, Any]:
        body.check_supported()
        if body.model != name:
            raise _unknown_model(body.model, name)
        if not served.jobs.alive:
            raise ApiError(503, "the engine has stopped; restart the server",
                           "server_error", code="engine_unavailable")
        work = served.work_for(body, body.stream)
        try:
            job = served.jobs.submit(work)
        except QueueFull:
            raise ApiError(429, f"the server is busy: {served.settings.max_queue} requests "
                           "are already waiting; retry shortly", "rate_limit_exceeded",
                           code="queue_full", headers={"Retry-After": "1"}) from None
        meta = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
                "model": name}
        try:
            first = await _next_event(job, served, request)
        except BaseException:
            served.jobs.cancel(job)
            raise
        if isinstance(first, Failed):
            raise api_error_of(first.error)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(_stream(job, served, meta, include_usage),
                                     media_type="text/event-stream")
        try:
            while True:
                event = await _next_event(job, served, request)
                if isinstance(event, (Failed, Done)):
                    break
        except BaseException:
            served.jobs.cancel(job)  # the client left, or this coroutine was cancelled
            raise
        if isinstance(event, Failed):
            raise api_error_of(event.error)
        result: CompletionResult = event.result
        return ChatCompletion(
            **meta,
            choices=[Choice(message=AssistantMessage(content=result.text),
                            finish_reason=result.finish_reason)],
            usage=_usage(result),
            speculative=_speculative(result),
        ).model_dump()

    app.add_middleware(Guard, settings=served.settings)
    return app


def _unknown_model(asked: str, served: str) -> ApiError:
    return ApiError(404, f"model {asked!r} is not served here; this server serves {served!r}",
                    param="model", code="model_not_found")


async def _next_event(job: Job, served: ServedModel, request: Request) -> Any:
    """The job's next event; cancels the job when the client goes away while it waits."""
    while True:
        try:
            return await asyncio.wait_for(job.events.get(), timeout=0.25)
        except asyncio.TimeoutError:  # not TimeoutError: Python 3.10 tells them apart
            if await request.is_disconnected():
                served.jobs.cancel(job)
                raise ApiError(499, "the client went away", code="cancelled") from None


async def _stream(job: Job, served: ServedModel, meta: dict[str, Any],
                  include_usage: bool) -> AsyncIterator[bytes]:
    """Server-sent events in OpenAI's chunk format, then `data: [DONE]`.

    When the client disconnects, Starlette cancels this generator: `finally` then cancels
    the job, which stops before its next forward pass.
    """
    finished = False

    def chunk(delta: Delta, finish: str | None = None) -> bytes:
        body = ChatCompletionChunk(**meta, choices=[ChunkChoice(delta=delta,
                                                                finish_reason=finish)])
        data = body.model_dump()
        # As OpenAI's chunks: a delta names only what it carries.
        data["choices"][0]["delta"] = delta.model_dump(exclude_none=True)
        return _sse(data)

    try:
        yield chunk(Delta(role="assistant", content=""))
        while True:
            event = await job.events.get()
            if isinstance(event, TextPiece):
                yield chunk(Delta(content=event.text))
            elif isinstance(event, Failed):
                error = api_error_of(event.error)
                yield _sse(error_json(error.message, error.type, error.param, error.code))
                break
            elif isinstance(event, Done):
                result: CompletionResult = event.result
                yield chunk(Delta(), result.finish_reason)
                if include_usage:
                    usage = ChatCompletionChunk(**meta, choices=[], usage=_usage(result))
                    data = usage.model_dump()
                    # As in the non-streamed answer: what the verifying loop did (clients
                    # ignore unknown fields; the language server's remote engine reads it).
                    data["speculative"] = _speculative(result).model_dump()
                    yield _sse(data)
                break
        finished = True
        yield _sse("[DONE]")
    finally:
        if not finished:
            served.jobs.cancel(job)
