"""Running the server over stdio or TCP with our framing, and ending it promptly.

pygls' own loop (pygls.io_.run_async) reads headers it trusts, exits through sys.exit raised
in a callback and then waits for its reader thread, which is blocked on stdin. Here a daemon
thread reads stdin, FrameParser frames the bytes, and the loop ends when `exit` arrives or
the input closes; the caller then exits the process (0 after shutdown, else 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import BinaryIO, Protocol

from .framing import FrameParser
from .protocol import SpecEditProtocol


class Servable(Protocol):
    """What the loops need of a server: its protocol, and a way to stop its jobs."""

    @property
    def protocol(self) -> SpecEditProtocol: ...

    def shutdown(self) -> None: ...

logger = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
# Chunks read ahead of the parser at most: a client flooding the input is slowed, not buffered.
READ_AHEAD = 16
# How long running tasks get to finish their cancellation once the client has gone.
CANCEL_GRACE_SECONDS = 1.0


class StdoutWriter:
    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.stream.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.close()


def exit_code(server: Servable) -> int:
    """LSP: 0 when `shutdown` came before the end, 1 otherwise."""
    return 0 if server.protocol.shut_down else 1


async def serve(server: Servable, read: Callable[[], Awaitable[bytes]],
                spare: frozenset[asyncio.Task[None]] = frozenset()) -> None:
    """Handle frames until `exit` or the end of the input; then cancel what still runs
    (all tasks but this one and `spare`)."""
    protocol = server.protocol
    parser = FrameParser()
    try:
        while not protocol.exited:
            chunk = await read()
            if not chunk:
                logger.info("the client closed the input")
                break
            for frame in parser.feed(chunk):
                protocol.handle_frame(frame)
                if protocol.exited:
                    break
    finally:
        protocol.closed = True  # nothing is written after the end
        server.shutdown()  # stops the engine thread's jobs
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current and t not in spare]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_GRACE_SECONDS)


def _stdin_reader(stdin: BinaryIO, loop: asyncio.AbstractEventLoop,
                  queue: asyncio.Queue[bytes]) -> None:
    """The reading thread: chunks onto the loop's queue, then b"" at the end of the input."""
    read = getattr(stdin, "read1", stdin.read)
    while True:
        try:
            chunk = read(READ_SIZE)
        except (OSError, ValueError):
            chunk = b""
        try:
            asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
        except RuntimeError:  # the loop is closed: the server is ending
            return
        if not chunk:
            return


def serve_stdio(server: Servable, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Serve over stdin/stdout until `exit` or the end of stdin; returns the exit code."""
    server.protocol.set_writer(StdoutWriter(stdout))

    async def main() -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue(READ_AHEAD)
        # A daemon thread: blocked in read() it must never keep the process alive.
        threading.Thread(target=_stdin_reader, args=(stdin, asyncio.get_running_loop(), queue),
                         name="specedit-stdin", daemon=True).start()
        await serve(server, queue.get)

    _run(main())
    return exit_code(server)


def serve_tcp(server: Servable, host: str, port: int) -> int:
    """Serve the first client that connects to host:port; returns the exit code."""

    async def main() -> None:
        done = asyncio.Event()
        spare = frozenset({asyncio.current_task()}) - {None}

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if done.is_set() or server.protocol.writer is not None:
                writer.close()  # one client per server, as over stdio
                return
            server.protocol.set_writer(writer)
            try:
                await serve(server, lambda: reader.read(READ_SIZE), spare)  # type: ignore[arg-type]
            finally:
                writer.close()
                done.set()

        listener = await asyncio.start_server(connection, host, port)
        logger.info("serving on %s:%s", host, port)
        async with listener:
            await done.wait()

    _run(main())
    return exit_code(server)


def _run(main: Awaitable[None]) -> None:
    # Not asyncio.run: it would wait for the default executor's threads at the end.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main)
    except KeyboardInterrupt:
        pass
    finally:
        loop.close()
