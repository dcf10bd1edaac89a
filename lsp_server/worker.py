"""The in-process engine: rewrite jobs on the engine's worker thread.

The thread itself (one job at a time, FIFO, loading, cancel, statuses) is the engine's
(engine/rewriting/worker.py), shared with the HTTP API; this adapter runs rewrites on it with
the model each job's settings name, and reports progress at most every REPORT_INTERVAL.
Everything the thread reports goes through callbacks that the server marshals onto its
event loop.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.rewriting.worker import EngineStatus, Job, Loading, Queued, Started
from engine.rewriting.worker import EngineWorker as CoreWorker

from .settings import ModelSpec

logger = logging.getLogger(__name__)

# Seconds between progress reports at least: a tiny model makes thousands of passes a second
# and the editor needs a few updates, not a flood of notifications.
REPORT_INTERVAL = 0.1
# The same for jobs that stream their text (partial results): 20 a second at most, each with
# a decode of the whole output so far, which is why it is not done after every pass.
STREAM_INTERVAL = 0.05


@dataclass(frozen=True)
class Generated:
    progress: Any  # engine.decode.stats.Progress
    # The rewritten region so far (decoded, cut at a closing fence), for jobs that stream it;
    # None otherwise. Whatever engine runs behind the worker fills it in the same way.
    text: str | None = None


JobEvent = Queued | Loading | Started | Generated


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


# The engine's modules are imported on the engine thread, when the first job needs them:
# torch takes seconds to import and the handshake must not wait for it.

def _default_load(spec: ModelSpec, log: Callable[[str], None]) -> Any:
    from engine.model.loading import load_model

    return load_model(spec.model, spec.device, spec.dtype, log=log)


def _default_rewrite(loaded: Any, job: RewriteJob, on_progress: Callable[[Any], None]) -> Any:
    from engine.rewriting.rewrite import rewrite

    return rewrite(loaded, job.code, job.instruction, language=job.language,
                   context_before=job.context_before, context_after=job.context_after,
                   method=job.method, max_new_tokens=job.max_new_tokens,
                   on_progress=on_progress, should_stop=job.cancelled.is_set)


def _default_text(loaded: Any, job: RewriteJob, tokens: Sequence[int]) -> str:
    from engine.rewriting.rewrite import partial_text

    return partial_text(loaded, job.code, tokens)


class EngineWorker:
    """Rewrite jobs on the engine's worker thread (engine/rewriting/worker.py), the model named
    by each job's settings, progress throttled for the editor."""

    def __init__(
        self,
        on_status: Callable[[EngineStatus], None] = lambda status: None,
        log: Callable[[str], None] = logger.info,
        load: Callable[[ModelSpec, Callable[[str], None]], Any] = _default_load,
        run: Callable[[Any, RewriteJob, Callable[[Any], None]], Any] = _default_rewrite,
        text: Callable[[Any, RewriteJob, Sequence[int]], str] = _default_text,
    ) -> None:
        self._run = run
        self._text = text
        self._worker = CoreWorker(load, name_of=lambda spec: spec.model, on_status=on_status,
                                  log=log)

    def preload(self, spec: ModelSpec) -> None:
        self._worker.preload(spec)

    def submit(self, job: RewriteJob) -> concurrent.futures.Future[Any]:
        def work(loaded: Any, should_stop: Callable[[], bool],
                 emit: Callable[[Any], None]) -> Any:
            last = 0.0
            interval = STREAM_INTERVAL if job.stream_text else REPORT_INTERVAL

            def on_progress(progress: Any) -> None:
                nonlocal last
                now = time.monotonic()
                if now - last >= interval:  # throttle first: decoding the text costs
                    last = now
                    text = self._text(loaded, job, progress.tokens) if job.stream_text else None
                    emit(Generated(progress, text))

            return self._run(loaded, job, on_progress)

        return self._worker.submit(Job(job.spec, work, job.on_event, job.cancelled, job.future))

    def stop(self) -> None:
        self._worker.stop()

    def join(self, timeout: float | None = None) -> None:
        self._worker.join(timeout)
