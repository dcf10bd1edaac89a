"""What a rewrite reports while it runs, fed by the engine thread's events: a cancellable
`window/workDoneProgress`, and partial results (the rewritten region so far) for clients
that asked for them with a `partialResultToken`."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from .worker import Generated, JobEvent, Loading, Queued, Started

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

logger = logging.getLogger(__name__)

TITLE = "specedit: rewriting selection"


def describe_event(event: JobEvent) -> tuple[str | None, int | None]:
    """(message, percentage) for a progress report; message None means nothing to report."""
    if isinstance(event, Queued):
        if event.ahead == 0:
            return None, None
        plural = "s" if event.ahead > 1 else ""
        return f"queued behind {event.ahead} rewrite{plural}", None
    if isinstance(event, Loading):
        return f"loading model {event.model}…", None
    if isinstance(event, Started):
        return f"rewriting with {event.model}…", 0
    if isinstance(event, Generated):
        p = event.progress
        rate = p.output_tokens / p.elapsed if p.elapsed > 0 else 0.0
        message = f"{p.output_tokens} tokens, {rate:.1f} tokens/s"
        if p.covered is None:
            return message, None
        return f"{message}, {p.covered:.0%} of the selection covered", round(100 * p.covered)
    raise TypeError(event)


def summary(result: Any) -> str:
    """The progress's last line: what the rewrite cost."""
    s = result.stats
    text = (f"{s.output_tokens} tokens in {s.wall_seconds:.2f} s "
            f"({s.tokens_per_second:.1f} tokens/s, {s.forward_passes} forward passes")
    if s.estimated_speedup:
        text += f", ~{s.estimated_speedup:.1f}x greedy's speed"
    return text + ")"


class RewriteProgress:
    """Progress for one rewrite. Without a token (the client has no progress) it does nothing."""

    def __init__(self, ls: LanguageServer, token: types.ProgressToken | None) -> None:
        self.ls = ls
        self.token = token
        self._ended = False

    @classmethod
    async def start(cls, ls: LanguageServer, token: types.ProgressToken | None = None,
                    title: str = TITLE) -> RewriteProgress:
        """Begin, with the client's own token or one created with the client."""
        if token is None and _supports_progress(ls):
            token = f"specedit-{uuid.uuid4()}"
            try:
                await asyncio.wait_for(ls.work_done_progress.create_async(token), 10)
            except Exception as exc:  # progress is a nicety; rewrite anyway
                logger.warning("window/workDoneProgress/create failed: %s", exc)
                token = None
        progress = cls(ls, token)
        if token is not None:
            ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(
                title=title, cancellable=True, message="starting…", percentage=0))
        return progress

    def on_event(self, event: JobEvent) -> None:
        message, percentage = describe_event(event)
        if message is not None:
            self.report(message, percentage)

    def report(self, message: str, percentage: int | None = None) -> None:
        if self.token is None or self._ended:
            return
        self.ls.work_done_progress.report(self.token, types.WorkDoneProgressReport(
            message=message, percentage=percentage, cancellable=True))

    def end(self, message: str) -> None:
        if self.token is None or self._ended:
            return
        self._ended = True
        # The protocol's progress forgets the token here (pygls_overrides.protocol).
        self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))


def _supports_progress(ls: LanguageServer) -> bool:
    window = ls.client_capabilities.window
    return bool(window and window.work_done_progress)


class PartialResults:
    """`$/progress` under the client's `partialResultToken` with the rewritten region so far.

    One notification per report that changed the text (the worker already throttles reports
    to STREAM_INTERVAL), then the final state before the response. The value is the whole
    text so far, not a delta, so a client that misses or drops one loses nothing.
    """

    def __init__(self, send: Callable[[types.ProgressToken, dict[str, Any]], None],
                 token: types.ProgressToken, uri: str, region: dict[str, Any],
                 version: int | None, fit: Callable[[str], str] = lambda text: text) -> None:
        self.send = send
        self.token = token
        self.uri = uri
        self.region = region  # the whole-line Range rewritten, as JSON
        self.version = version
        self.fit = fit  # the region's line endings
        self.sent = 0
        self._last_text: str | None = None
        self._covered: float | None = None
        self._done = False

    def on_event(self, event: JobEvent) -> None:
        if not isinstance(event, Generated) or event.text is None or self._done:
            return
        p = event.progress
        self._covered = p.covered
        text = self.fit(event.text)
        if text != self._last_text:
            self._send(text, p.covered, p.output_tokens, p.forward_passes, p.elapsed)

    def finish(self, text: str, result: Any) -> None:
        """The final state: the region's whole rewrite, sent just before the response."""
        if self._done:
            return
        s = result.stats
        covered = self._covered
        if result.finish_reason == "stop" and str(result.method).startswith("speculative"):
            covered = 1.0  # a finished rewrite drafted from the original has reached its end
        self._send(text, covered, s.output_tokens, s.forward_passes, s.wall_seconds)
        self._done = True

    def close(self) -> None:
        """Send nothing more: the response (or the error) is on its way."""
        self._done = True

    def _send(self, text: str, covered: float | None, output_tokens: int,
              forward_passes: int, elapsed: float) -> None:
        self._last_text = text
        self.sent += 1
        self.send(self.token, {
            "uri": self.uri, "range": self.region, "version": self.version, "text": text,
            "covered": covered, "outputTokens": output_tokens,
            "forwardPasses": forward_passes, "elapsedSeconds": elapsed})
