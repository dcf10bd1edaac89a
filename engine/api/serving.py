"""The HTTP server under the app: uvicorn with limits on what a connection may hold, and a
shutdown that stops the engine's work instead of waiting for it.

- A connection must send each request's line and headers within `header_timeout` seconds
  (from its opening, or from the first byte of its next request); one that does not is
  closed. uvicorn has no such deadline: its keep-alive timer runs only between requests and
  stops at the first byte, so a client that sends half a header held its socket for ever.
  The body's deadline is the Guard's (app.py), which can answer 408.
- At most `max_connections` connections at once: a request on one more is answered 503 in
  OpenAI's shape and its connection closed (uvicorn's own `limit_concurrency` answers plain
  text, and counts the asking connection, so it allows one fewer than it says).
- SIGTERM or Ctrl-C: the running job stops before its next forward pass, waiting ones are
  refused (their clients get 503 `server_shutting_down`), the answers are sent within
  `API_SHUTDOWN_GRACE` seconds, and `specedit api` exits 0. uvicorn alone waited for every
  job to finish, then re-raised the signal, so the process died of it.

The server speaks HTTP/1.1 through h11 always (not httptools, even where installed): these
limits are written against h11's protocol class.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from engine.contract import API_SHUTDOWN_GRACE

from .schemas import error_json


@dataclass(frozen=True)
class ServerLimits:
    header_timeout: float  # seconds to send a request's line and headers
    keep_alive_timeout: int  # seconds an idle connection stays open between requests
    max_connections: int  # connections open at once
    max_header_bytes: int  # most bytes of a request head held while it is incomplete


async def _too_many_connections(scope: Any, receive: Any, send: Any) -> None:
    body = error_json("the server has too many connections open; retry shortly",
                      "server_error", code="too_many_connections")
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
        (b"retry-after", b"1"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


def protocol_class(limits: ServerLimits) -> type[asyncio.Protocol]:
    """h11's protocol with a deadline for request heads and a cap on connections."""

    class LimitedH11Protocol(H11Protocol):
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                # Every request on this connection gets 503; the answer closes it.
                self.app = _too_many_connections
            self._arm_head_deadline()

        def data_received(self, data: bytes) -> None:
            # The first byte of a request on a kept-alive connection starts its deadline
            # (uvicorn's keep-alive timer stops there).
            if self._head_deadline is None and self.conn.their_state is h11.IDLE:
                self._arm_head_deadline()
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm_head_deadline()  # the head is in: the request runs

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_deadline()
            super().connection_lost(exc)

        def _arm_head_deadline(self) -> None:
            self._disarm_head_deadline()
            self._head_deadline = self.loop.call_later(limits.header_timeout,
                                                       self._head_too_slow)

        def _disarm_head_deadline(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_too_slow(self) -> None:
            self._head_deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()  # nothing to answer: no request has begun

    return LimitedH11Protocol


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: Any = None) -> None:
        # Before uvicorn waits for open requests: stop the work they wait for, so that they
        # end now, with an error, instead of when their jobs would have finished.
        self._on_shutdown()
        await super().shutdown(sockets=sockets)


def serve(app: Any, host: str, port: int, limits: ServerLimits, log_level: str,
          on_shutdown: Callable[[], None]) -> bool:
    """Serve `app` until SIGTERM or SIGINT; `on_shutdown` runs as the shutdown begins.
    False when it never served (the port was taken, say: uvicorn has logged why)."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, http=protocol_class(limits),
        timeout_keep_alive=limits.keep_alive_timeout,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_graceful_shutdown=API_SHUTDOWN_GRACE)  # type: ignore[arg-type]
    server = _Server(config, on_shutdown)

    def stop(sig: int, frame: Any) -> None:
        # uvicorn handles the signal while it serves, then hands it on to the handler it
        # found (this one) once it has shut down: the process then exits normally rather
        # than die of it. Before uvicorn takes over, it asks the server to stop.
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return server.started
