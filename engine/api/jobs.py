"""The API's side of the engine thread: requests become jobs on the engine's worker
(engine/rewriting/worker.py), their events come back to the request's coroutine.

The worker runs one job at a time on the loaded model, with at most `max_waiting` behind it
(one more is refused at once: the HTTP layer answers 429). A job cancelled while it waits
never starts; one cancelled while it runs stops before its next forward pass. `close` (the
server's shutdown) does both to every job at once, and their requests fail with ShuttingDown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.contract import RewriteCancelled
from engine.rewriting.worker import EngineWorker, ShuttingDown
from engine.rewriting.worker import Job as EngineJob

# A request's work: it gets `should_stop` and `emit` (events to the waiting request), and
# returns the result.
Work = Callable[[Callable[[], bool], Callable[[Any], None]], Any]

# The name the one served model goes by on the worker.
SERVED = "served"


@dataclass
class Done:
    result: Any


@dataclass
class Failed:
    error: BaseException


@dataclass(eq=False)
class Job:
    """One request's view of its engine job: the events its coroutine awaits."""

    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    passes_at_cancel: int | None = None
    ended: bool = False  # its result or error is on its way (set on the engine thread)

    def emit(self, event: Any) -> None:
        """Hand an event to the request's coroutine (called from the engine thread)."""
        # RuntimeError: the event loop has closed (the server is shutting down); no one waits.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)


@dataclass
class CancelRecord:
    """How many forward passes a cancelled job still ran after it was cancelled."""

    passes_after_cancel: int
    started: bool


@dataclass
class Closed:
    """What `close` stopped: the running job (its record once it has ended) and the waiting
    jobs it refused."""

    running: bool
    refused: int
    stopped: CancelRecord | None = None


class JobQueue:
    """Requests on the engine worker, one at a time; at most `max_waiting` wait behind it."""

    def __init__(self, loaded: Any, max_waiting: int, pass_count: Callable[[], int]) -> None:
        self.pass_count = pass_count
        self.worker = EngineWorker.serving(loaded, SERVED, max_waiting=max_waiting)
        self.cancels = 0  # jobs cancelled before they ended (a hang-up, noticed by polling)
        self.failures = 0  # jobs that ended with an error (not a cancel, not the shutdown)
        self.last_cancel: CancelRecord | None = None
        self.closed: Closed | None = None
        self._live: set[Job] = set()  # submitted, not yet ended

    @property
    def alive(self) -> bool:
        return self.worker.alive

    @property
    def waiting(self) -> int:
        return self.worker.waiting

    @property
    def running(self) -> bool:
        return self.worker.running is not None

    @property
    def completed(self) -> int:
        return self.worker.completed

    def submit(self, work: Work) -> Job:
        """Queue `work`; QueueFull when `max_waiting` jobs already wait."""
        job = Job(asyncio.get_running_loop())
        started = threading.Event()

        def run(loaded: Any, should_stop: Callable[[], bool], emit: Any) -> Any:
            started.set()
            return work(should_stop, job.emit)

        # The worker's own events (queued, started) are not the request's: not forwarded.
        engine_job = EngineJob(SERVED, run, cancelled=job.cancelled)

        def finished(future: concurrent.futures.Future[Any]) -> None:
            job.ended = True
            self._live.discard(job)
            error = future.exception()
            if job.passes_at_cancel is not None:
                record = CancelRecord(
                    self.pass_count() - job.passes_at_cancel if started.is_set() else 0,
                    started.is_set())
                self.last_cancel = record
                if self.closed is not None and started.is_set():
                    self.closed.stopped = record
            if self.closed is not None and isinstance(error, RewriteCancelled):
                # Stopped by the shutdown, not by its client.
                error = ShuttingDown("the server is shutting down; the request was stopped "
                                     "before it finished") if started.is_set() else ShuttingDown()
            elif error is not None and not isinstance(error, RewriteCancelled):
                self.failures += 1
            job.emit(Done(future.result()) if error is None else Failed(error))

        self._live.add(job)
        self.worker.submit(engine_job)
        engine_job.future.add_done_callback(finished)
        return job

    def cancel(self, job: Job) -> None:
        """Stop `job`: before its next forward pass, or before it starts. A job that has
        already ended (its request failed, say) is not cancelled, nor counted."""
        if job.cancelled.is_set() or job.ended:
            return
        job.passes_at_cancel = self.pass_count()
        job.cancelled.set()
        self.cancels += 1

    def close(self) -> Closed:
        """Stop the running job before its next forward pass and refuse the waiting ones
        (their requests fail with ShuttingDown), as later submits are; idempotent."""
        if self.closed is None:
            self.closed = Closed(self.running, self.waiting)
            passes = self.pass_count()
            for job in list(self._live):
                if job.passes_at_cancel is None:
                    job.passes_at_cancel = passes
            self.worker.stop()
        return self.closed
