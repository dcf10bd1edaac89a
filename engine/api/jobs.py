"""One engine thread, a bounded queue in front of it, and cancellation.

The model runs one request at a time on a single thread (a model and its KV cache are not
shareable, and on a CPU a second concurrent decode only slows both). Requests wait in a
queue of bounded length; one more is refused at once (the HTTP layer answers 429) instead of
piling up. A job cancelled while it waits never starts; one cancelled while it runs stops
before its next forward pass (decoding loops poll `should_stop` before every pass).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..contract import RewriteCancelled

# A job's work: it gets `should_stop` and `emit` (events to the waiting request), and
# returns the result.
Work = Callable[[Callable[[], bool], Callable[[Any], None]], Any]


class QueueFull(Exception):
    """Every place in the queue is taken."""


@dataclass
class Done:
    result: Any


@dataclass
class Failed:
    error: BaseException


@dataclass
class Job:
    work: Work
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    started: bool = False
    passes_at_cancel: int | None = None

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


class JobQueue:
    """Runs jobs one at a time on an engine thread; at most `max_waiting` wait behind it."""

    def __init__(self, max_waiting: int, pass_count: Callable[[], int]) -> None:
        self.max_waiting = max_waiting
        self.pass_count = pass_count
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._waiting = 0
        self.running: Job | None = None
        self.completed = 0  # jobs ended: finished, failed, cancelled or skipped
        self.cancels = 0  # cancel requests taken (a hang-up, noticed by polling)
        self.last_cancel: CancelRecord | None = None
        self._thread = threading.Thread(target=self._serve, name="specedit-engine", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def waiting(self) -> int:
        return self._waiting

    def submit(self, work: Work) -> Job:
        """Queue `work`; QueueFull when `max_waiting` jobs already wait."""
        job = Job(work, asyncio.get_running_loop())
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise QueueFull()
            self._waiting += 1
        self._queue.put(job)
        return job

    def cancel(self, job: Job) -> None:
        """Stop `job`: before its next forward pass, or before it starts."""
        if job.cancelled.is_set():
            return
        job.passes_at_cancel = self.pass_count()
        job.cancelled.set()
        self.cancels += 1

    def close(self) -> None:
        self._queue.put(None)

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                self._waiting -= 1
            if job.cancelled.is_set():
                self.last_cancel = CancelRecord(0, started=False)
                self.completed += 1
                job.emit(Failed(RewriteCancelled()))
                continue
            job.started = True
            self.running = job
            try:
                job.emit(Done(job.work(job.cancelled.is_set, job.emit)))
            except BaseException as exc:  # reported to the request, never kills the thread
                job.emit(Failed(exc))
            finally:
                self.running = None
                self.completed += 1
                if job.cancelled.is_set() and job.passes_at_cancel is not None:
                    self.last_cancel = CancelRecord(
                        self.pass_count() - job.passes_at_cancel, started=True)
