"""The engine thread with a fake engine: order, queueing, cancelling, loading, failures."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import engine
from lsp_server.settings import ModelSpec
from lsp_server.worker import EngineStatus, EngineWorker, Generated, Loading, Queued, RewriteJob

A = ModelSpec("model-a", "cpu", "float32")
B = ModelSpec("model-b", "cpu", "float32")


class FakeEngine:
    """Rewrites run until their gate opens (or they are cancelled), like a long decode."""

    def __init__(self) -> None:
        self.loads: list[ModelSpec] = []
        self.started: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.statuses: list[EngineStatus] = []

    def load(self, spec: ModelSpec, log: Any) -> Any:
        self.loads.append(spec)
        if spec.model == "missing":
            raise engine.ModelNotFoundError("model 'missing' not found")
        return f"loaded {spec.model}"

    def run(self, loaded: Any, job: RewriteJob, on_progress: Any) -> Any:
        self.started.append(job.code)
        gate = self.gates.setdefault(job.code, threading.Event())
        while not gate.wait(0.005):
            if job.cancelled.is_set():  # the engine polls should_stop before every pass
                raise engine.RewriteCancelled()
            on_progress(engine.Progress(len(self.started), 1, 0.1))
        return f"{loaded}: {job.code}"

    def worker(self) -> EngineWorker:
        return EngineWorker(on_status=self.statuses.append, load=self.load, run=self.run)


def job(code: str, spec: ModelSpec = A) -> tuple[RewriteJob, list[Any]]:
    events: list[Any] = []
    return RewriteJob(spec=spec, code=code, instruction="x", on_event=events.append), events


def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine()


def test_one_rewrite_at_a_time_in_order(fake: FakeEngine):
    worker = fake.worker()
    first, first_events = job("first")
    second, second_events = job("second")
    worker.submit(first)
    wait_until(lambda: fake.started == ["first"])
    worker.submit(second)
    assert second_events[0] == Queued(1)
    time.sleep(0.05)
    assert fake.started == ["first"]  # the second waits
    fake.gates["first"].set()
    assert first.future.result(5) == "loaded model-a: first"
    wait_until(lambda: fake.started == ["first", "second"])
    fake.gates["second"].set()
    assert second.future.result(5) == "loaded model-a: second"
    assert fake.loads == [A]  # loaded once, reused
    assert first_events[0] == Queued(0) and Loading("model-a") in first_events
    assert any(isinstance(e, Generated) for e in first_events)
    states = [s.state for s in fake.statuses]
    assert states[:3] == ["loading", "ready", "busy"] and states[-1] == "ready"
    assert fake.statuses[-1].result == "loaded model-a: second"
    worker.stop()


def test_cancel_running_and_queued(fake: FakeEngine):
    worker = fake.worker()
    running, _ = job("running")
    queued, _ = job("queued")
    worker.submit(running)
    wait_until(lambda: fake.started == ["running"])
    worker.submit(queued)
    queued.cancel()
    running.cancel()
    with pytest.raises(engine.RewriteCancelled):
        running.future.result(5)
    with pytest.raises(engine.RewriteCancelled):
        queued.future.result(5)
    assert fake.started == ["running"]  # the queued one never ran
    after, _ = job("after")
    fake.gates["after"] = threading.Event()
    fake.gates["after"].set()
    worker.submit(after)
    assert after.future.result(5) == "loaded model-a: after"
    worker.stop()


def test_bad_model_fails_and_the_next_model_loads(fake: FakeEngine):
    worker = fake.worker()
    missing = ModelSpec("missing", "cpu", "float32")
    worker.preload(missing)
    wait_until(lambda: any(s.state == "error" for s in fake.statuses))
    error = next(s for s in fake.statuses if s.state == "error")
    assert isinstance(error.error, engine.ModelNotFoundError)  # a background load: reported
    failing, _ = job("x", missing)
    worker.submit(failing)
    with pytest.raises(engine.ModelNotFoundError):
        failing.future.result(5)
    assert fake.statuses[-1].error is None  # the request reports its own failure
    worker.preload(B)
    good, _ = job("y", B)
    fake.gates["y"] = threading.Event()
    fake.gates["y"].set()
    worker.submit(good)
    assert good.future.result(5) == "loaded model-b: y"
    assert fake.loads == [missing, missing, B]
    worker.stop()


def test_stop_cancels_pending_work(fake: FakeEngine):
    worker = fake.worker()
    running, _ = job("running")
    worker.submit(running)
    wait_until(lambda: fake.started == ["running"])
    worker.stop()
    with pytest.raises(engine.RewriteCancelled):
        running.future.result(5)
    worker.join(5)
