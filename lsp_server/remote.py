"""The remote engine: rewrites by an OpenAI-compatible endpoint, behind EngineWorker's interface.

`submit(job) -> Future`, `preload`, `stop`, `join` and the same JobEvents (Queued, Started,
Generated with the region so far), so the rewrite service cannot tell which engine ran a job.
One thread runs an asyncio loop with one httpx client, and each job is a task there: the
endpoint queues or batches concurrent requests itself. Cancelling a job (its flag) cancels
the task, which closes the stream, and the endpoint stops decoding. Imports no torch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import difflib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from engine.contract import EndpointError, RewriteCancelled
from engine.decode.loop import Progress
from engine.rewriting.endpoint import Endpoint, list_models
from engine.rewriting.remote import remote_rewrite

from .settings import ModelSpec
from .worker import REPORT_INTERVAL, EngineStatus, Generated, Queued, RewriteJob, Started

logger = logging.getLogger(__name__)

# How often a running job's cancel flag is looked at: a cancel closes the stream this soon.
CANCEL_POLL_SECONDS = 0.02


def endpoint_of(spec: ModelSpec, environ: Mapping[str, str] = os.environ) -> Endpoint:
    """The spec's endpoint, with the key read from the environment now (never from settings)."""
    assert spec.endpoint, "a remote spec has an endpoint"
    key = environ.get(spec.key_env, "").strip() if spec.key_env else ""
    return Endpoint(spec.endpoint, spec.model, key or None, spec.key_env or None)


def coverage(region: str | None, original: str) -> float | None:
    """Share of the original's lines the rewrite so far has reached (by its last match)."""
    if region is None or not original:
        return None
    old = original.splitlines()
    matcher = difflib.SequenceMatcher(None, old, region.splitlines(), autojunk=False)
    blocks = [b for b in matcher.get_matching_blocks() if b.size]
    return min(1.0, (blocks[-1].a + blocks[-1].size) / len(old)) if blocks and old else 0.0


class RemoteEngine:
    def __init__(self, on_status: Callable[[EngineStatus], None] = lambda status: None,
                 log: Callable[[str], None] = logger.info,
                 environ: Mapping[str, str] = os.environ) -> None:
        self._on_status = on_status
        self._log = log
        self._environ = environ
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None  # httpx.AsyncClient, made on the loop
        self._jobs: dict[int, RewriteJob] = {}  # by id: jobs are mutable, so unhashable
        self._stopping = False

    # -- called from the server's event loop --------------------------------------------

    def preload(self, spec: ModelSpec) -> None:
        """Check the endpoint in the background: reachable, the key accepted, the model served."""
        self._schedule(self._probe(spec))

    def submit(self, job: RewriteJob) -> concurrent.futures.Future[Any]:
        with self._lock:
            if self._stopping:
                job.future.set_exception(RuntimeError("the server is shutting down"))
                return job.future
            self._jobs[id(job)] = job
        job.on_event(Queued(0))  # the endpoint may queue it; it does not say
        self._schedule(self._run(job))
        return job.future

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the remote engine's thread -----------------------------------------------------

    def _schedule(self, coroutine: Any) -> None:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever,
                                                name="specedit-remote", daemon=True)
                self._thread.start()
        asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient()
        return self._client

    async def _probe(self, spec: ModelSpec) -> None:
        endpoint = endpoint_of(spec, self._environ)
        self._on_status(EngineStatus("loading", spec.model, f"checking {endpoint.base_url}"))
        try:
            served = [str(m.get("id")) for m in await list_models(self._http(), endpoint)]
            if served and spec.model not in served:
                raise EndpointError(
                    f"the endpoint {endpoint.base_url} does not serve {spec.model!r} but "
                    f"{', '.join(served)}: set specedit.endpointModel to one of them")
        except EndpointError as exc:
            self._on_status(EngineStatus("error", spec.model, str(exc), error=exc))
            return
        self._on_status(EngineStatus("ready", spec.model, f"remote, at {endpoint.base_url}"))

    async def _run(self, job: RewriteJob) -> None:
        try:
            if not job.future.set_running_or_notify_cancel():
                return
            task = asyncio.ensure_future(self._rewrite(job))
            while not task.done():
                if job.cancelled.is_set():
                    task.cancel()  # closes the stream: the endpoint stops decoding
                await asyncio.wait({task}, timeout=CANCEL_POLL_SECONDS)
            try:
                result = task.result()
            except asyncio.CancelledError:
                job.future.set_exception(RewriteCancelled())
            except BaseException as exc:  # every failure goes back to the caller
                job.future.set_exception(exc)
                self._on_status(EngineStatus("ready", job.spec.model, None))
            else:
                job.future.set_result(result)
                self._on_status(EngineStatus("ready", job.spec.model, None, result))
        finally:
            with self._lock:
                self._jobs.pop(id(job), None)

    async def _rewrite(self, job: RewriteJob) -> Any:
        if job.cancelled.is_set():
            raise asyncio.CancelledError
        endpoint = endpoint_of(job.spec, self._environ)
        self._on_status(EngineStatus("busy", job.spec.model,
                                     f"rewriting at {endpoint.base_url}"))
        job.on_event(Started(job.spec.model))
        started = time.monotonic()
        last = 0.0

        def on_partial(region: str | None, pieces: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last < REPORT_INTERVAL:
                return
            last = now
            # Pieces stand for tokens (most servers stream one token a piece); the passes
            # are not known until the endpoint's usage arrives.
            progress = Progress(pieces, 0, now - started, coverage(region, job.code))
            job.on_event(Generated(progress, region))

        return await remote_rewrite(
            self._http(), endpoint, job.code, job.instruction, language=job.language,
            context_before=job.context_before, context_after=job.context_after,
            max_new_tokens=job.max_new_tokens,
            # The selection is the prediction for speculative; the other methods send none,
            # and the endpoint decodes as it does by default.
            prediction=job.method == "speculative",
            on_partial=on_partial, log=self._log)
