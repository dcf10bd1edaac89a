"""What the user reads when a request fails: one line that says what to do, plus details.

The line goes to `window/showMessage`, the details (traceback) to `window/logMessage`.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from lsprotocol import types

from engine.contract import (
    InvalidRequestError,
    ModelNotFoundError,
    RewriteCancelled,
    SpecEditError,
)


class Refused(Exception):
    """The server chose not to rewrite or apply (empty selection, document changed...)."""


class DocumentChanged(Refused):
    """The document is no longer the text the rewrite was computed for."""


@dataclass(frozen=True)
class Failure:
    message: str
    detail: str
    type: types.MessageType
    cancelled: bool = False


def _is_out_of_memory(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")  # an OOM from torch means torch is loaded; never import it
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    return isinstance(exc, MemoryError) or (oom is not None and isinstance(exc, oom))


def describe(exc: BaseException, action: str = "the rewrite") -> Failure:
    """`action` names what failed, for errors that do not say it themselves."""
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    if isinstance(exc, Refused | InvalidRequestError):  # the request's fault, not a failure
        return Failure(f"specedit: {exc}", detail, types.MessageType.Warning)
    if isinstance(exc, RewriteCancelled):
        return Failure("specedit: rewrite cancelled; nothing was changed.", str(exc),
                       types.MessageType.Info, cancelled=True)
    if isinstance(exc, ModelNotFoundError):
        return Failure(f"specedit: {exc}. Set specedit.model to a model you have.", detail,
                       types.MessageType.Error)
    if isinstance(exc, SpecEditError):
        return Failure(f"specedit: {exc}", detail, types.MessageType.Error)
    if _is_out_of_memory(exc):
        return Failure(
            "specedit: out of memory: select less code, lower specedit.maxNewTokens or "
            "specedit.contextLines, or pick a smaller model or dtype (bfloat16).",
            detail, types.MessageType.Error)
    return Failure(
        f"specedit: {action} failed ({type(exc).__name__}: {exc}); "
        "the server log has the details.", detail, types.MessageType.Error)


@dataclass(frozen=True)
class Reporter:
    """Tells the user through the editor: `window/showMessage` and `window/logMessage`."""

    show_message: Callable[[types.ShowMessageParams], None]
    log_message: Callable[[types.LogMessageParams], None]

    def show(self, kind: types.MessageType, message: str) -> None:
        self.show_message(types.ShowMessageParams(type=kind, message=message))

    def log(self, kind: types.MessageType, message: str) -> None:
        self.log_message(types.LogMessageParams(type=kind, message=message))

    def report(self, exc: BaseException, action: str = "the rewrite") -> Failure:
        """One actionable line to showMessage, the details to logMessage."""
        failure = describe(exc, action)
        self.log(types.MessageType.Log if failure.cancelled else failure.type, failure.detail)
        self.show(failure.type, failure.message)
        return failure
