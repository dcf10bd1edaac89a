"""The engine thread: it owns the model, loads it, and runs jobs one at a time, first come
first served. Both servers adapt it: the language server (rewrites, several models over
time) and the OpenAI-compatible API (chat completions on one model).

Loading and decoding take seconds and hold the GIL only in short stretches, so they run on
one dedicated thread and the servers' event loops keep answering (cancels, health, shutdown).
One thread also means one job at a time on the model (a model and its KV cache are not
shareable, and on a CPU a second concurrent decode only slows both); later jobs wait in a
FIFO, optionally bounded, and are told how many are ahead. A job cancelled while it waits
never starts; one cancelled while it runs stops before its next forward pass (the decoding
loop polls `should_stop`). Everything the thread reports goes through callbacks that the
caller makes thread-safe.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import gc
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from engine.contract import RewriteCancelled

# -- events a job receives, in this order: Queued (again as jobs ahead finish), Loading when
# its model must load first, Started, then whatever its work emits ------------------------


@dataclass(frozen=True)
class Queued:
    ahead: int  # jobs that run before this one


@dataclass(frozen=True)
class Loading:
    model: str


@dataclass(frozen=True)
class Started:
    model: str


@dataclass(frozen=True)
class EngineStatus:
    """What the engine thread is doing: loading, ready, error or busy."""

    state: str
    model: str
    message: str | None = None
    result: Any = None  # the result of the job that just finished, if it succeeded
    # A background load's failure, which no job will report (a job's own load failure
    # reaches its caller through the job's future instead).
    error: BaseException | None = None


class QueueFull(Exception):
    """Every place in the queue is taken."""


class ShuttingDown(RewriteCancelled):
    """The engine stopped before the job could run (or, said by its caller, while it ran)."""

    def __init__(self, message: str = "the server is shutting down; the request was not run"
                 ) -> None:
        super().__init__(message)


# The work of a job: (the loaded model, should_stop, emit) -> result. `should_stop` is for
# the decoding loop to poll before each pass; `emit` hands the job's own events to it.
Work = Callable[[Any, Callable[[], bool], Callable[[Any], None]], Any]


@dataclass(eq=False)
class Job:
    """One request for the engine thread. `spec` names the model it needs (what `load`
    takes), `future` receives its result or exception."""

    spec: Hashable
    work: Work
    on_event: Callable[[Any], None] = lambda event: None  # called on the engine thread
    cancelled: threading.Event = field(default_factory=threading.Event)
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)

    def cancel(self) -> None:
        """Stop before the next forward pass; a queued job is dropped without running."""
        self.cancelled.set()


@dataclass(frozen=True)
class _Load:
    spec: Hashable


def _no_load(spec: Hashable, log: Callable[[str], None]) -> Any:
    raise RuntimeError("this engine worker has no model loader")


class EngineWorker:
    def __init__(
        self,
        load: Callable[[Any, Callable[[str], None]], Any] = _no_load,
        *,
        name_of: Callable[[Any], str] = str,
        on_status: Callable[[EngineStatus], None] = lambda status: None,
        log: Callable[[str], None] = lambda message: None,
        max_waiting: int | None = None,
    ) -> None:
        """`load(spec, log)` loads a job's model (kept until a job needs another one);
        `name_of(spec)` is how events and statuses name it. `max_waiting`: jobs that may
        wait behind the running one (None: no limit); one more raises QueueFull."""
        self._load = load
        self._name_of = name_of
        self._on_status = on_status
        self._log = log
        self.max_waiting = max_waiting
        self._cond = threading.Condition()
        self._pending: collections.deque[Job | _Load] = collections.deque()
        self._running: Job | _Load | None = None
        self._stopping = False
        self._wanted: Hashable = None  # the model the latest preload asked for
        self._loaded: Any = None
        self._loaded_spec: Hashable = None
        self.completed = 0  # jobs ended: finished, failed, cancelled or never started
        self._thread = threading.Thread(target=self._loop, name="specedit-engine", daemon=True)
        self._thread.start()

    @classmethod
    def serving(cls, loaded: Any, spec: Hashable, **kwargs: Any) -> EngineWorker:
        """A worker for one model that is already loaded (jobs name it by `spec`)."""
        worker = cls(**kwargs)
        worker._loaded, worker._loaded_spec = loaded, spec
        return worker

    # -- called from any thread ------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def waiting(self) -> int:
        with self._cond:
            return sum(isinstance(t, Job) for t in self._pending)

    @property
    def running(self) -> Job | None:
        running = self._running
        return running if isinstance(running, Job) else None

    def preload(self, spec: Hashable) -> None:
        """Load `spec` in the background (dropping the model loaded before, if different)."""
        with self._cond:
            self._wanted = spec
            self._pending.append(_Load(spec))
            self._cond.notify()

    def submit(self, job: Job) -> concurrent.futures.Future[Any]:
        """Queue `job`; its future fails with ShuttingDown after `stop`, QueueFull is raised
        when `max_waiting` jobs already wait."""
        with self._cond:
            if self._stopping:
                job.future.set_exception(ShuttingDown())
                return job.future
            ahead = sum(isinstance(t, Job) for t in self._pending)
            if self.max_waiting is not None and ahead >= self.max_waiting:
                raise QueueFull()
            ahead += isinstance(self._running, Job)
            # Reported before the job is visible to the thread, so it precedes Started.
            job.on_event(Queued(ahead))
            if isinstance(self._running, _Load) and self._running.spec == job.spec:
                job.on_event(Loading(self._name_of(job.spec)))  # the load it waits for
            self._pending.append(job)
            self._cond.notify()
        return job.future

    def stop(self) -> None:
        """Cancel the running job (it stops before its next pass) and refuse the queued ones;
        the thread then ends (a daemon: the process need not wait for it)."""
        with self._cond:
            self._stopping = True
            jobs = [t for t in self._pending if isinstance(t, Job)]
            if isinstance(self._running, Job):
                jobs.append(self._running)
            self._cond.notify()
        for job in jobs:
            job.cancel()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # -- the engine thread -----------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    pending, self._pending = list(self._pending), collections.deque()
                    break
                task = self._running = self._pending.popleft()
                waiting = [t for t in self._pending if isinstance(t, Job)]
            if isinstance(task, Job):
                for ahead, job in enumerate(waiting, start=1):
                    job.on_event(Queued(ahead))
                self._run(task)
            else:
                self._preload(task)
            with self._cond:
                self._running = None
        for task in pending:
            if isinstance(task, Job) and task.future.set_running_or_notify_cancel():
                self.completed += 1
                task.future.set_exception(ShuttingDown())

    def _preload(self, task: _Load) -> None:
        if task.spec != self._wanted:
            return  # a later preload asked for another model meanwhile
        # A failure is reported through on_status by _model; the thread goes on.
        with contextlib.suppress(BaseException):
            self._model(task.spec)

    def _model(self, spec: Hashable, job: Job | None = None) -> Any:
        if self._loaded is not None and self._loaded_spec == spec:
            return self._loaded
        self._unload()
        name = self._name_of(spec)
        if job is not None:
            job.on_event(Loading(name))
        self._on_status(EngineStatus("loading", name, f"loading {name}"))
        started = time.perf_counter()
        try:
            loaded = self._load(spec, self._log)
        except BaseException as exc:
            self._on_status(EngineStatus("error", name, str(exc) or type(exc).__name__,
                                         error=exc if job is None else None))
            raise
        self._loaded, self._loaded_spec = loaded, spec
        where = getattr(loaded, "device", None)
        self._on_status(EngineStatus(
            "ready", name,
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

    def _run(self, job: Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            self.completed += 1
            return
        result: Any = None
        name = self._name_of(job.spec)
        try:
            if job.cancelled.is_set():
                raise RewriteCancelled()
            loaded = self._model(job.spec, job)
            if job.cancelled.is_set():
                raise RewriteCancelled()
            self._on_status(EngineStatus("busy", name, "running"))
            job.on_event(Started(name))
            result = job.work(loaded, job.cancelled.is_set, job.on_event)
        except BaseException as exc:  # every failure goes back to the caller
            self._recover(exc)
            self.completed += 1
            job.future.set_exception(exc)
            if self._loaded is not None:
                self._on_status(EngineStatus("ready", name))
            return
        self.completed += 1
        job.future.set_result(result)
        self._on_status(EngineStatus("ready", name, None, result))

    def _recover(self, exc: BaseException) -> None:
        """After out-of-memory, give the allocator its cache back so the next job can run."""
        torch = sys.modules.get("torch")
        if isinstance(exc, MemoryError) or (
                torch is not None and isinstance(exc, torch.OutOfMemoryError)):
            gc.collect()
            if torch is not None and torch.cuda.is_available():
                torch.cuda.empty_cache()
