"""The engine thread: it owns the model, loads it, and runs rewrites one at a time.

Loading and decoding take seconds and hold the GIL only in short stretches, so they run on
one dedicated thread and the asyncio loop keeps answering (code actions, cancels, shutdown).
One thread also means one rewrite at a time on the model: later ones wait in a FIFO and are
told how many are ahead. Everything the thread reports goes through callbacks the caller
makes thread-safe (the server marshals them onto its event loop).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.contract import RewriteCancelled

from .settings import ModelSpec

logger = logging.getLogger(__name__)

# Seconds between progress reports at least: a tiny model makes thousands of passes a second
# and the editor needs a few updates, not a flood of notifications.
REPORT_INTERVAL = 0.1
# The same for jobs that stream their text (partial results): 20 a second at most, each with
# a decode of the whole output so far, which is why it is not done after every pass.
STREAM_INTERVAL = 0.05


@dataclass(frozen=True)
class Queued:
    ahead: int  # rewrites that run before this one


@dataclass(frozen=True)
class Loading:
    model: str


@dataclass(frozen=True)
class Started:
    model: str


@dataclass(frozen=True)
class Generated:
    progress: Any  # engine.Progress
    # The rewritten region so far (decoded, cut at a closing fence), for jobs that stream it;
    # None otherwise. Whatever engine runs behind the worker fills it in the same way.
    text: str | None = None


JobEvent = Queued | Loading | Started | Generated


@dataclass(frozen=True)
class EngineStatus:
    """What the engine thread is doing, for `specedit/status`: loading, ready, error or busy.

    (Not engine.catalog.ModelStatus, which says whether a catalog model is downloaded.)
    """

    state: str
    model: str
    message: str | None = None
    result: Any = None  # the engine.RewriteResult of the rewrite that just finished
    # A background load's failure, which no request will report (a rewrite's own load
    # failure reaches its caller through the job's future instead).
    error: BaseException | None = None


@dataclass
class RewriteJob:
    spec: ModelSpec
    code: str
    instruction: str
    language: str | None = None
    context_before: str = ""
    context_after: str = ""
    method: str = "speculative"
    max_new_tokens: int | None = None
    # Decode the text so far for each report (Generated.text): only when a client shows it.
    stream_text: bool = False
    on_event: Callable[[JobEvent], None] = lambda event: None  # called on the engine thread
    cancelled: threading.Event = field(default_factory=threading.Event)
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)

    def cancel(self) -> None:
        """Stop before the next forward pass; a queued job is dropped without loading."""
        self.cancelled.set()


@dataclass
class _Load:
    spec: ModelSpec


def _default_load(spec: ModelSpec, log: Callable[[str], None]) -> Any:
    import engine

    return engine.load_model(spec.model, spec.device, spec.dtype, log=log)


def _default_rewrite(loaded: Any, job: RewriteJob, on_progress: Callable[[Any], None]) -> Any:
    import engine

    return engine.rewrite(loaded, job.code, job.instruction, language=job.language,
                          context_before=job.context_before, context_after=job.context_after,
                          method=job.method, max_new_tokens=job.max_new_tokens,
                          on_progress=on_progress, should_stop=job.cancelled.is_set)


def _default_text(loaded: Any, job: RewriteJob, tokens: Sequence[int]) -> str:
    import engine

    return engine.partial_text(loaded, job.code, tokens)


class EngineWorker:
    def __init__(
        self,
        on_status: Callable[[EngineStatus], None] = lambda status: None,
        log: Callable[[str], None] = logger.info,
        load: Callable[[ModelSpec, Callable[[str], None]], Any] = _default_load,
        run: Callable[[Any, RewriteJob, Callable[[Any], None]], Any] = _default_rewrite,
        text: Callable[[Any, RewriteJob, Sequence[int]], str] = _default_text,
    ) -> None:
        self._on_status = on_status
        self._log = log
        self._load = load
        self._run = run
        self._text = text
        self._cond = threading.Condition()
        self._pending: collections.deque[RewriteJob | _Load] = collections.deque()
        self._running: RewriteJob | _Load | None = None
        self._stopping = False
        self._wanted: ModelSpec | None = None  # the model the latest settings ask for
        self._loaded: Any = None
        self._loaded_spec: ModelSpec | None = None
        self._thread = threading.Thread(target=self._loop, name="specedit-engine", daemon=True)
        self._thread.start()

    # -- called from the event loop -------------------------------------------------------

    def preload(self, spec: ModelSpec) -> None:
        """Load `spec` in the background (dropping the model loaded before, if different)."""
        with self._cond:
            self._wanted = spec
            self._pending.append(_Load(spec))
            self._cond.notify()

    def submit(self, job: RewriteJob) -> concurrent.futures.Future[Any]:
        with self._cond:
            if self._stopping:
                job.future.set_exception(RuntimeError("the server is shutting down"))
                return job.future
            ahead = sum(isinstance(t, RewriteJob) for t in self._pending)
            ahead += isinstance(self._running, RewriteJob)
            # Reported before the job is visible to the thread, so it precedes Started.
            job.on_event(Queued(ahead))
            if isinstance(self._running, _Load) and self._running.spec == job.spec:
                job.on_event(Loading(job.spec.model))  # the background load it waits for
            self._pending.append(job)
            self._cond.notify()
        return job.future

    def stop(self) -> None:
        """Cancel everything and let the thread finish (it is a daemon: exit need not wait)."""
        with self._cond:
            self._stopping = True
            jobs = [t for t in self._pending if isinstance(t, RewriteJob)]
            if isinstance(self._running, RewriteJob):
                jobs.append(self._running)
            self._cond.notify()
        for job in jobs:
            job.cancel()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # -- the engine thread ----------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    pending, self._pending = list(self._pending), collections.deque()
                    break
                task = self._running = self._pending.popleft()
                waiting = [t for t in self._pending if isinstance(t, RewriteJob)]
            if isinstance(task, RewriteJob):
                for ahead, job in enumerate(waiting, start=1):
                    job.on_event(Queued(ahead))
                self._rewrite(task)
            else:
                self._preload(task)
            with self._cond:
                self._running = None
        for task in pending:
            if isinstance(task, RewriteJob) and task.future.set_running_or_notify_cancel():
                task.future.set_exception(RewriteCancelled())

    def _preload(self, task: _Load) -> None:
        if task.spec != self._wanted:
            return  # the settings moved on while this load waited
        # A failure is reported through on_status by _model; the thread goes on.
        with contextlib.suppress(BaseException):
            self._model(task.spec)

    def _model(self, spec: ModelSpec, job: RewriteJob | None = None) -> Any:
        if self._loaded is not None and self._loaded_spec == spec:
            return self._loaded
        self._unload()
        if job is not None:
            job.on_event(Loading(spec.model))
        self._on_status(EngineStatus("loading", spec.model, f"loading {spec.model}"))
        started = time.perf_counter()
        try:
            loaded = self._load(spec, self._log)
        except BaseException as exc:
            self._on_status(EngineStatus("error", spec.model, str(exc) or type(exc).__name__,
                                        error=exc if job is None else None))
            raise
        self._loaded, self._loaded_spec = loaded, spec
        where = getattr(loaded, "device", None)
        self._on_status(EngineStatus(
            "ready", spec.model,
            f"loaded in {time.perf_counter() - started:.1f} s" + (f" on {where}" if where else "")))
        return loaded

    def _unload(self) -> None:
        if self._loaded is None:
            return
        device = getattr(self._loaded, "device", None)
        self._loaded = self._loaded_spec = None
        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and getattr(device, "type", None) == "cuda":
            torch.cuda.empty_cache()

    def _rewrite(self, job: RewriteJob) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        result: Any = None
        try:
            if job.cancelled.is_set():
                raise RewriteCancelled()
            loaded = self._model(job.spec, job)
            if job.cancelled.is_set():
                raise RewriteCancelled()
            self._on_status(EngineStatus("busy", job.spec.model, "rewriting"))
            job.on_event(Started(job.spec.model))
            last = 0.0
            interval = STREAM_INTERVAL if job.stream_text else REPORT_INTERVAL

            def on_progress(progress: Any) -> None:
                nonlocal last
                now = time.monotonic()
                if now - last >= interval:  # throttle first: decoding costs
                    last = now
                    text = (self._text(loaded, job, progress.tokens)
                            if job.stream_text else None)
                    job.on_event(Generated(progress, text))

            result = self._run(loaded, job, on_progress)
        except BaseException as exc:  # every failure goes back to the caller
            self._recover(exc)
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)
        if self._loaded is not None:
            self._on_status(EngineStatus("ready", job.spec.model, None, result))

    def _recover(self, exc: BaseException) -> None:
        """After out-of-memory, give the allocator its cache back so the next request can run."""
        torch = sys.modules.get("torch")
        if isinstance(exc, MemoryError) or (
                torch is not None and isinstance(exc, torch.OutOfMemoryError)):
            gc.collect()
            if torch is not None and torch.cuda.is_available():
                torch.cuda.empty_cache()
