"""pygls' LSP protocol with its defects worked around (each is an entry of the index in
__init__.py, with its upstream report in UPSTREAM.md).

- Every message is checked before pygls sees it (`handle_frame`, `handle_payload`), so every
  request with an id gets exactly one response.
- The lifecycle: requests before `initialize` get -32002, `shutdown` cancels over a copy of
  the in-flight table, `exit` stops the transport instead of raising SystemExit.
- `$/cancelRequest` reaches the command's own task through a hook; a cancelled step of a
  generator handler cancels its request; finished notification and step futures leave the
  in-flight table; an ended progress leaves the progress table.
- Writes to a closed or broken output are dropped instead of reported by another write.
- The workspace's documents follow LSP's line rules (document_sync.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.progress import Progress
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.workspace import Workspace

from .document_sync import LspWorkspace
from .framing import Body, Frame

logger = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_NOT_INITIALIZED = -32002


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _explain(exc: BaseException) -> str:
    """One line saying which field of the params is wrong."""
    cause = exc.__cause__ or exc
    if isinstance(cause, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(cause))[:500]
    return (str(cause) or type(cause).__name__).splitlines()[0][:500]


class EndingProgress(Progress):
    """pygls' work-done progress, which forgets a token once its progress has ended.

    pygls keeps a Future per token for good: one per rewrite, and a token can never be
    created again (UPSTREAM.md: "Progress.end keeps the token")."""

    def end(self, token: types.ProgressToken, value: types.WorkDoneProgressEnd) -> None:
        super().end(token, value)
        self.tokens.pop(token, None)


class SpecEditProtocol(LanguageServerProtocol):
    # Called with the id of every request the client cancels (set by the server).
    on_cancel_request: Callable[[Any], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress = EndingProgress(self)
        self.initialize_received = False  # until then, requests get -32002 (LSP)
        self.exited = False  # `exit` came: the transport stops reading
        self.closed = False  # the output is gone: nothing more is written

    @property
    def shut_down(self) -> bool:
        """`shutdown` was answered: only `exit` is accepted now."""
        return bool(self._shutdown)

    # pygls assigns the workspace in `initialize`; ours makes its documents LSP-correct.
    @property  # type: ignore[override]
    def _workspace(self) -> Workspace | None:
        return self.__dict__.get("_specedit_workspace")

    @_workspace.setter
    def _workspace(self, workspace: Workspace | None) -> None:
        if workspace is not None and type(workspace) is Workspace:
            workspace.__class__ = LspWorkspace  # same state, LSP's line rules for documents
        self.__dict__["_specedit_workspace"] = workspace

    # -- reading --------------------------------------------------------------------------

    def handle_frame(self, frame: Frame) -> None:
        """One frame from the transport: a body to handle, or a framing error to answer."""
        if not isinstance(frame, Body):
            self.send_error(None, PARSE_ERROR, f"unreadable message: {frame.message}")
            return
        try:
            data = json.loads(frame.data)
        except (ValueError, RecursionError) as exc:
            detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            self.send_error(None, PARSE_ERROR, f"the message is not JSON: {detail}")
            return
        self.handle_payload(data)

    def handle_payload(self, data: Any) -> None:
        """A parsed JSON body: checked as JSON-RPC, then handed to pygls."""
        if not isinstance(data, dict):
            self.send_error(None, INVALID_REQUEST, "a message must be a JSON object "
                            f"(got {type(data).__name__}; batches are not part of LSP)")
            return
        msg_id = data.get("id")
        answerable = _is_id(msg_id)
        if "id" in data and msg_id is not None and not answerable:
            self.send_error(None, INVALID_REQUEST, "the id must be a string or an integer")
            return
        method = data.get("method")
        if data.get("jsonrpc") != "2.0":
            self._refuse(data, answerable, INVALID_REQUEST, 'the message needs "jsonrpc": "2.0"')
            return
        if "method" in data:
            if not isinstance(method, str):
                self._refuse(data, answerable, INVALID_REQUEST, "the method must be a string")
                return
            if not self.initialize_received and method not in (types.INITIALIZE, types.EXIT):
                # LSP: requests before `initialize` get ServerNotInitialized, notifications
                # are dropped (pygls runs them, and its workspace does not exist yet).
                self._refuse(data, answerable, SERVER_NOT_INITIALIZED,
                             f"{method} before initialize: send initialize first")
                return
            params = data.get("params")
            if params is not None and not isinstance(params, dict | list):
                self._refuse(data, answerable, INVALID_PARAMS,
                             f"the params of {method} must be an object or an array")
                return
            if self._shutdown and method != types.EXIT:
                self._refuse(data, answerable, INVALID_REQUEST,
                             f"{method} after shutdown: the server only accepts exit now")
                return
        elif not answerable or not ("result" in data or "error" in data):
            self._refuse(data, answerable, INVALID_REQUEST,
                         "the message is neither a request, a notification nor a response")
            return
        if "method" in data and "params" not in data:
            # JSON-RPC lets params be omitted; pygls' generic message types require the field.
            data = {**data, "params": None}
        try:
            message = self.structure_message(data)
        except Exception as exc:  # pygls raises JsonRpcInvalidParams or an internal error
            self._bad_structure(data, answerable, exc)
            return
        if method == types.INITIALIZE and answerable:
            self.initialize_received = True
        try:
            self.handle_message(message)
        except Exception:  # pygls answers a request's failure itself; this is a last resort
            logger.exception("failed to handle %s", method or "a response")
            if answerable and "method" in data:
                self.send_error(msg_id, INTERNAL_ERROR, f"internal error handling {method}")

    def _refuse(self, data: dict[str, Any], answerable: bool, code: int, message: str) -> None:
        if answerable and "method" in data:
            self.send_error(data["id"], code, message)
        elif "method" in data:  # a notification: nobody to answer
            logger.warning("ignored a notification: %s", message)
        else:
            # Not a request: answering with its id could land on the client's own request
            # of the same id, so the error goes out with id null.
            self.send_error(None, code, message)

    def _bad_structure(self, data: dict[str, Any], answerable: bool, exc: Exception) -> None:
        method = data.get("method")
        why = _explain(exc)
        if method is None:
            # A response to one of our requests that does not fit its type: fail its future
            # rather than leave the code awaiting it waiting forever.
            future = self._request_futures.pop(data["id"], None)
            if future is not None and not future.done():
                future.set_exception(JsonRpcException(f"invalid response: {why}"))
            logger.warning("invalid response to %r: %s", data.get("id"), why)
        elif answerable:
            self.send_error(data["id"], INVALID_PARAMS, f"invalid params for {method}: {why}")
        else:
            logger.warning("ignored %s with invalid params: %s", method, why)

    def _execute_handler(self, msg_id: Any, handler: Any, callback: Any,
                         args: Any = None, kwargs: Any = None) -> None:
        # pygls files the future of every async or threaded handler in `_request_futures`,
        # but only a request's own callback removes it: a notification's future, and each
        # step of a generator handler (the command of workspace/executeCommand), stay there
        # for good. Ours leave once done.
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        future = self._request_futures.get(msg_id)
        if future is not None:
            future.add_done_callback(lambda done: self._forget(msg_id, done))

    def _forget(self, msg_id: Any, future: Any) -> None:
        if self._request_futures.get(msg_id) is future:
            del self._request_futures[msg_id]

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        # pygls cancels the request's future, but for workspace/executeCommand that future is
        # not the task running our command: the hook stops the engine job itself.
        super()._handle_cancel_notification(msg_id)
        if self.on_cancel_request is not None:
            self.on_cancel_request(msg_id)

    def _run_generator(self, future: Any, *, gen: Any, result_future: Any) -> None:
        # pygls calls future.result() on the step that just finished; for a cancelled one
        # (the command's task, cancelled by exit or shutdown) that raises CancelledError out
        # of an event-loop callback, logged as a traceback, and the request is never
        # answered. A cancelled step cancels the request.
        if future is not None and future.cancelled():
            gen.close()
            if not result_future.done():
                result_future.cancel()
            return
        super()._run_generator(future, gen=gen, result_future=result_future)

    # -- writing --------------------------------------------------------------------------

    def send_error(self, msg_id: Any, code: int, message: str) -> None:
        self._send_data({"jsonrpc": "2.0", "id": msg_id,
                         "error": {"code": code, "message": message}})

    def _send_data(self, data: Any) -> None:
        if self.closed or not data:
            return
        if self.writer is None:
            logger.error("no transport to send a message on")
            return
        try:
            body = json.dumps(data, default=self._serialize_message).encode(self.CHARSET)
        except Exception:  # a bug of ours: logged, never reported through the same channel
            logger.exception("could not serialise a message")
            return
        header = b"Content-Length: %d\r\n\r\n" % len(body) if self._include_headers else b""
        try:
            self.writer.write(header + body)
        except (OSError, ValueError) as exc:  # the client went away (ValueError: closed file)
            logger.info("the client's end is closed (%s): nothing more is sent", exc)
            self.closed = True

    # -- lifecycle ------------------------------------------------------------------------

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Any:
        if (user_handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current_id = self.msg_id
        # A copy: a cancelled future's callback removes it from the table.
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True
        return None

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> None:
        # Stop reading and writing; the transport returns, and the process exits with 0 after
        # shutdown, else 1. Running tasks may still try to write: those writes are dropped.
        self.exited = True
        self.closed = True
