"""One rewrite from request to edit: document, engine job, progress, diff, version check, apply.

Every entry point (the command, `codeAction/resolve`, `specedit/rewrite`) goes through
`RewriteService.compute`, which never edits anything itself; only `apply` does, and only
when the document is still exactly the text the rewrite was computed from.

The service reads only documents the editor opened (`Documents`) and talks to the editor and
the engine only through the narrow `Collaborators` the server hands it; it never sees the
server object.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lsprotocol import converters, types
from pygls.exceptions import JsonRpcContentModified, JsonRpcException, JsonRpcRequestCancelled

from engine.contract import RewriteCancelled
from engine.rewriting.request import check_rewrite_request

from .documents import Documents, OpenDocument
from .edits import fit_partial, fit_rewrite, line_edits, region_for, region_range
from .messages import DocumentChanged, Refused, Reporter
from .progress import PartialResults, RewriteProgress, summary
from .settings import Settings
from .wire import REQUEST_NAMES, RewriteRequest, wire_stats
from .worker import JobEvent, RewriteJob

_converter = converters.get_converter()

# LSP's RequestFailed: the request was valid but could not be carried out.
REQUEST_FAILED = -32803

# Editors' language ids that say nothing about the code.
_NO_LANGUAGE = {"", "plaintext", "text"}

# The same line whether the path exists, is missing, is a FIFO or is no file at all: the
# answer must reveal nothing about the file system.
NOT_OPEN = "the document is not open in the editor: open it, then select the code again"


@dataclass(frozen=True)
class EditorSupport:
    """What the client can do with an edit (from its capabilities and the handshake)."""

    versioned_edits: bool  # WorkspaceEdit.documentChanges
    position_encoding: str


@dataclass(frozen=True)
class Collaborators:
    """Everything the service needs from the server, and nothing more."""

    documents: Documents  # opened documents only
    reporter: Reporter  # showMessage / logMessage
    settings: Callable[[], Settings]  # the current settings
    submit: Callable[[RewriteJob], concurrent.futures.Future[Any]]  # to the engine thread
    start_progress: Callable[[types.ProgressToken | None], Awaitable[RewriteProgress]]
    apply_edit: Callable[[types.ApplyWorkspaceEditParams],
                         Awaitable[types.ApplyWorkspaceEditResult]]
    ask: Callable[[types.ShowMessageRequestParams], Awaitable[types.MessageActionItem | None]]
    editor_support: Callable[[], EditorSupport]
    request_id: Callable[[], Any]  # the id of the request being handled, to match $/cancel
    on_loop: Callable[[Callable[..., Any]], Callable[..., None]]  # engine thread -> event loop
    # `$/progress` {token, value}: partial results under the client's partialResultToken.
    send_progress: Callable[[types.ProgressToken, Any], None]


@dataclass
class Outcome:
    edit: types.WorkspaceEdit | None  # None: the model left the selection as it was
    result: Any  # engine.RewriteResult
    document: OpenDocument  # the document as the edit was computed for it

    @property
    def uri(self) -> str:
        return self.document.uri

    @property
    def stats(self) -> dict[str, Any]:
        return wire_stats(self.result)


class RewriteService:
    def __init__(self, collaborators: Collaborators) -> None:
        self.c = collaborators
        # Cancel flags of running rewrites, by request id and by progress token.
        self._by_request: dict[Any, threading.Event] = {}
        self._by_token: dict[Any, threading.Event] = {}

    # -- cancellation -----------------------------------------------------------------------

    def cancel_request(self, msg_id: Any) -> None:
        if (flag := self._by_request.get(msg_id)) is not None:
            flag.set()

    def cancel_token(self, token: Any) -> None:
        if (flag := self._by_token.get(token)) is not None:
            flag.set()

    def cancel_all(self) -> None:
        for flag in [*self._by_request.values(), *self._by_token.values()]:
            flag.set()

    # -- documents --------------------------------------------------------------------------

    def opened(self, uri: str) -> OpenDocument:
        """The opened document at `uri`; anything else is refused without touching the disk."""
        doc = self.c.documents.opened(uri)
        if doc is None:
            raise Refused(NOT_OPEN)
        return doc

    def check_unchanged(self, before: OpenDocument) -> None:
        now = self.c.documents.opened(before.uri)
        if now is None or now.version != before.version or now.text != before.text:
            raise DocumentChanged("the document changed while the rewrite ran, so nothing was "
                                  "applied: run the rewrite again")

    # -- the rewrite ------------------------------------------------------------------------

    async def compute(self, request: RewriteRequest) -> Outcome:
        """The rewrite as a WorkspaceEdit for the document as it is now; applies nothing."""
        cancelled = threading.Event()
        msg_id = self.c.request_id()  # the request this runs for, to find it on $/cancel
        if msg_id is not None:
            self._by_request[msg_id] = cancelled
        progress: RewriteProgress | None = None
        partial: PartialResults | None = None
        try:
            doc = self.opened(request.uri)
            if None not in (request.version, doc.version) and request.version != doc.version:
                raise DocumentChanged("the document changed since the code action was "
                                      "offered: select the code again")
            settings = self.c.settings()
            region = region_for(doc.text, request.range, settings.context_lines)
            instruction = check_rewrite_request(
                region.text if region is not None else "", request.instruction or "",
                max_new_tokens=settings.max_new_tokens, names=REQUEST_NAMES)
            assert region is not None  # an empty selection was refused above
            progress = await self.c.start_progress(request.work_done_token)
            if progress.token is not None:
                self._by_token[progress.token] = cancelled
            support = self.c.editor_support()
            if request.partial_result_token is not None:
                partial = PartialResults(
                    self.c.send_progress, request.partial_result_token, doc.uri,
                    _converter.unstructure(region_range(region, support.position_encoding)),
                    doc.version, fit=lambda text: fit_partial(region.text, text))
            job = RewriteJob(
                spec=settings.model_spec, code=region.text, instruction=instruction,
                language=_language(doc), context_before=region.context_before,
                context_after=region.context_after, method=settings.method,
                max_new_tokens=settings.max_new_tokens, stream_text=partial is not None,
                on_event=self.c.on_loop(_both(progress, partial)), cancelled=cancelled)
            try:
                result = await asyncio.wrap_future(self.c.submit(job))
            except asyncio.CancelledError:
                job.cancel()
                raise
            self.check_unchanged(doc)
            new_text = fit_rewrite(region.text, result.text)
            edits = line_edits(region, new_text, support.position_encoding)
            if partial is not None:
                partial.finish(new_text, result)
            progress.end(summary(result))
            edit = _workspace_edit(doc, edits, support) if edits else None
            return Outcome(edit, result, doc)
        except BaseException as exc:
            if progress is not None:
                progress.end("cancelled" if isinstance(exc, asyncio.CancelledError)
                             else f"failed: {exc}")
            raise
        finally:
            if partial is not None:
                partial.close()  # the engine may report once more before it sees the cancel
            if msg_id is not None:
                self._by_request.pop(msg_id, None)
            if progress is not None and progress.token is not None:
                self._by_token.pop(progress.token, None)

    async def apply(self, outcome: Outcome) -> None:
        """Ask the editor to apply the edit; raises Refused if the document moved on."""
        if outcome.edit is None:
            return
        self.check_unchanged(outcome.document)
        response = await self.c.apply_edit(types.ApplyWorkspaceEditParams(
            edit=outcome.edit, label="specedit: rewrite selection"))
        if not response.applied:
            reason = response.failure_reason or "it gave no reason"
            raise Refused(f"the editor did not apply the rewrite: {reason}")

    # -- entry points ---------------------------------------------------------------------

    async def run_command(self, raw: Any) -> dict[str, Any]:
        """`specedit.rewriteSelection`: rewrite and apply; asks for the instruction if absent.

        Failures are shown to the user and returned as `{applied: false, reason}` rather
        than as an error response, which editors would show a second time.
        """
        try:
            request = RewriteRequest.from_wire(raw)
            self.opened(request.uri)  # refused before the user is asked anything
            if request.instruction is None:
                instruction = await self.ask_instruction()
                if instruction is None:
                    return {"applied": False, "reason": "no instruction was chosen"}
                request = dataclasses.replace(request, instruction=instruction)
            outcome = await self.compute(request)
            await self.apply(outcome)
        except Exception as exc:  # any failure: tell the user, keep serving
            return {"applied": False, "reason": self.c.reporter.report(exc).message}
        self.warn_if_cut_short(outcome)
        self.say_if_unchanged(outcome)
        return {"applied": outcome.edit is not None, "stats": outcome.stats}

    async def resolve(self, action: types.CodeAction) -> types.CodeAction:
        """`codeAction/resolve` of a preset action: fill in its edit (none if it failed).

        Clients resolve every action they show, the command-carrying "Rewrite selection with
        instruction…" too; it has no data and nothing to resolve.
        """
        if action.data is None:
            return action
        try:
            outcome = await self.compute(RewriteRequest.from_wire(action.data))
        except asyncio.CancelledError:
            self.c.reporter.report(RewriteCancelled())
            raise
        except Exception as exc:  # shown to the user; the action stays empty
            self.c.reporter.report(exc)
            return action
        self.warn_if_cut_short(outcome)
        self.say_if_unchanged(outcome)
        action.edit = outcome.edit
        return action

    async def preview(self, raw: Any) -> dict[str, Any]:
        """`specedit/rewrite`: the edit and stats, applied by no one but the client."""
        try:
            outcome = await self.compute(RewriteRequest.from_wire(raw))
        except asyncio.CancelledError:
            self.c.reporter.report(RewriteCancelled())
            raise
        except Exception as exc:  # the client gets the same line as an error
            failure = self.c.reporter.report(exc)
            code = REQUEST_FAILED
            if failure.cancelled:
                code = JsonRpcRequestCancelled.CODE
            elif isinstance(exc, DocumentChanged):
                code = JsonRpcContentModified.CODE
            raise JsonRpcException(failure.message, code=code) from exc
        self.warn_if_cut_short(outcome)
        edit = outcome.edit or types.WorkspaceEdit(changes={outcome.uri: []})
        return {"edit": edit, "stats": outcome.stats}

    async def ask_instruction(self) -> str | None:
        """No instruction came with the command: offer the presets."""
        presets = self.c.settings().presets
        if not presets:
            raise Refused("no instruction came with the command and specedit.presets is "
                          "empty: send an instruction or configure presets")
        choice = await self.c.ask(types.ShowMessageRequestParams(
            type=types.MessageType.Info,
            message="specedit: how should the selection be rewritten?",
            actions=[types.MessageActionItem(title=p) for p in presets]))
        return choice.title if choice is not None else None

    # -- telling the user -------------------------------------------------------------------

    def warn_if_cut_short(self, outcome: Outcome) -> None:
        if outcome.result.finish_reason == "length":
            self.c.reporter.show(
                types.MessageType.Warning,
                "specedit: the rewrite stopped at specedit.maxNewTokens before the model "
                "finished, so it may be cut short: raise it (0 leaves room for about twice "
                "the selection)")

    def say_if_unchanged(self, outcome: Outcome) -> None:
        if outcome.edit is None:
            self.c.reporter.show(
                types.MessageType.Info,
                "specedit: the model left the selection as it was; nothing to change")


def _both(progress: RewriteProgress,
          partial: PartialResults | None) -> Callable[[JobEvent], None]:
    """One event handler for the work-done progress and, when asked for, partial results."""
    if partial is None:
        return progress.on_event

    def on_event(event: JobEvent) -> None:
        progress.on_event(event)
        partial.on_event(event)

    return on_event


def _language(doc: OpenDocument) -> str | None:
    if doc.language_id and doc.language_id not in _NO_LANGUAGE:
        return doc.language_id
    from engine.rewriting.prompt import language_for_path

    return language_for_path(doc.path or "")


def _workspace_edit(doc: OpenDocument, edits: list[types.TextEdit],
                    support: EditorSupport) -> types.WorkspaceEdit:
    if support.versioned_edits:
        # The editor itself refuses the edit if the document moved past `version`.
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(
                uri=doc.uri, version=doc.version),
            edits=list(edits))])
    return types.WorkspaceEdit(changes={doc.uri: list(edits)})
