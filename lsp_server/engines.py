"""Which engine runs a job: the in-process worker, or the remote engine when the job's
settings name an endpoint. Both have the same interface, so the service sees one engine."""

from __future__ import annotations

import concurrent.futures
from typing import Any, Protocol

from .settings import ModelSpec
from .worker import RewriteJob


class Engine(Protocol):
    def preload(self, spec: ModelSpec) -> None: ...

    def submit(self, job: RewriteJob) -> concurrent.futures.Future[Any]: ...

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...


class EngineChoice:
    def __init__(self, local: Engine, remote: Engine) -> None:
        self.local = local
        self.remote = remote

    def _for(self, spec: ModelSpec) -> Engine:
        return self.remote if spec.endpoint else self.local

    def preload(self, spec: ModelSpec) -> None:
        self._for(spec).preload(spec)

    def submit(self, job: RewriteJob) -> concurrent.futures.Future[Any]:
        return self._for(job.spec).submit(job)

    def stop(self) -> None:
        self.local.stop()
        self.remote.stop()

    def join(self, timeout: float | None = None) -> None:
        self.local.join(timeout)
        self.remote.join(timeout)
