"""One rewrite from request to edit: snapshot, engine job, progress, diff, version check, apply.

Every entry point (the command, `codeAction/resolve`, `specedit/rewrite`) goes through
`RewriteService.compute`, which never edits anything itself; only `apply` does, and only
when the document is still exactly the text the rewrite was computed from.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsprotocol import converters, types
from pygls.exceptions import JsonRpcContentModified, JsonRpcException, JsonRpcRequestCancelled

from engine.contract import RewriteCancelled

from .edits import fit_rewrite, line_edits, region_for
from .messages import DocumentChanged, Failure, Refused, describe
from .progress import RewriteProgress, summary
from .worker import RewriteJob

if TYPE_CHECKING:
    from .server import SpecEditServer

_converter = converters.get_converter()

# LSP's RequestFailed: the request was valid but could not be carried out.
_REQUEST_FAILED = -32803

# Editors' language ids that say nothing about the code.
_NO_LANGUAGE = {"", "plaintext", "text"}


def plain(value: Any) -> Any:
    """pygls hands custom requests' params over as namedtuples: back to dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True)
class RewriteRequest:
    uri: str
    range: types.Range
    instruction: str | None = None
    version: int | None = None  # the document version `range` refers to, when known

    @classmethod
    def from_wire(cls, raw: Any) -> RewriteRequest:
        """From `{uri, range, instruction?}` or `{textDocument: {uri}, range, instruction}`."""
        raw = plain(raw)
        if not isinstance(raw, Mapping):
            raise Refused("the request needs an object {uri, range, instruction}")
        uri = raw.get("uri") or (raw.get("textDocument") or {}).get("uri")
        if not isinstance(uri, str) or "range" not in raw:
            raise Refused("the request needs the document's uri and the selection's range")
        try:
            selection = _converter.structure(raw["range"], types.Range)
        except Exception as exc:  # cattrs raises several kinds
            raise Refused(f"the range {raw['range']!r} is not an LSP Range") from exc
        instruction = raw.get("instruction")
        instruction = instruction.strip() if isinstance(instruction, str) else None
        version = raw.get("version")
        return cls(uri, selection, instruction or None,
                   version if isinstance(version, int) else None)

    def to_wire(self) -> dict[str, Any]:
        data: dict[str, Any] = {"uri": self.uri, "range": _converter.unstructure(self.range)}
        if self.instruction is not None:
            data["instruction"] = self.instruction
        if self.version is not None:
            data["version"] = self.version
        return data


@dataclass
class Outcome:
    uri: str
    edit: types.WorkspaceEdit | None  # None: the model left the selection as it was
    result: Any  # engine.RewriteResult
    source: str  # the document the edit was computed for
    version: int | None

    @property
    def stats(self) -> dict[str, Any]:
        return wire_stats(self.result)


def last_rewrite(result: Any) -> dict[str, Any]:
    """`lastRewrite` of `specedit/status`."""
    s = result.stats
    return {"tokensPerSecond": s.tokens_per_second, "speedup": s.estimated_speedup,
            "outputTokens": s.output_tokens, "forwardPasses": s.forward_passes}


def wire_stats(result: Any) -> dict[str, Any]:
    s = result.stats
    return {
        **last_rewrite(result),
        "promptTokens": s.prompt_tokens,
        "draftedTokens": s.drafted_tokens,
        "acceptedTokens": s.accepted_tokens,
        "wallSeconds": s.wall_seconds,
        "estimatedGreedySeconds": s.estimated_greedy_seconds,
        "method": result.method,
        "model": result.model,
        "finishReason": result.finish_reason,
    }


class RewriteService:
    def __init__(self, ls: SpecEditServer) -> None:
        self.ls = ls
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

    # -- the rewrite ------------------------------------------------------------------------

    async def compute(self, request: RewriteRequest,
                      work_done_token: types.ProgressToken | None = None) -> Outcome:
        """The rewrite as a WorkspaceEdit for the document as it is now; applies nothing."""
        if not request.instruction:
            raise Refused("the instruction is empty: say how to rewrite the selection")
        cancelled = threading.Event()
        msg_id = self.ls.protocol.msg_id  # the request this runs for, to find it on $/cancel
        if msg_id is not None:
            self._by_request[msg_id] = cancelled
        progress: RewriteProgress | None = None
        try:
            doc = self.ls.workspace.get_text_document(request.uri)
            source, version = self._snapshot(request.uri)
            if None not in (request.version, version) and request.version != version:
                raise DocumentChanged("the document changed since the code action was "
                                      "offered: select the code again")
            settings = self.ls.settings
            region = region_for(source, request.range, settings.context_lines)
            if region is None or not region.text.strip():
                raise Refused("the selection is empty: select the code to rewrite first")
            progress = await RewriteProgress.start(self.ls, work_done_token)
            if progress.token is not None:
                self._by_token[progress.token] = cancelled
            job = RewriteJob(
                spec=settings.model_spec, code=region.text, instruction=request.instruction,
                language=self._language(doc), context_before=region.context_before,
                context_after=region.context_after, method=settings.method,
                max_new_tokens=settings.max_new_tokens,
                on_event=self.ls.threadsafe(progress.on_event), cancelled=cancelled)
            try:
                result = await asyncio.wrap_future(self.ls.worker.submit(job))
            except asyncio.CancelledError:
                job.cancel()
                raise
            self.check_unchanged(request.uri, source, version)
            edits = line_edits(region, fit_rewrite(region.text, result.text),
                               self.ls.workspace.position_encoding or "utf-16")
            progress.end(summary(result))
            edit = self._workspace_edit(request.uri, version, edits) if edits else None
            return Outcome(request.uri, edit, result, source, version)
        except BaseException as exc:
            if progress is not None:
                progress.end("cancelled" if isinstance(exc, asyncio.CancelledError)
                             else describe(exc).message)
            raise
        finally:
            self._by_request.pop(msg_id, None)
            if progress is not None:
                self._by_token.pop(progress.token, None)

    async def apply(self, outcome: Outcome) -> None:
        """Ask the editor to apply the edit; raises Refused if the document moved on."""
        if outcome.edit is None:
            return
        self.check_unchanged(outcome.uri, outcome.source, outcome.version)
        response = await self.ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(
            edit=outcome.edit, label="specedit: rewrite selection"))
        if not response.applied:
            reason = response.failure_reason or "it gave no reason"
            raise Refused(f"the editor did not apply the rewrite: {reason}")

    def check_unchanged(self, uri: str, source: str, version: int | None) -> None:
        now_source, now_version = self._snapshot(uri)
        if now_version != version or now_source != source:
            raise DocumentChanged("the document changed while the rewrite ran, so nothing was "
                          "applied: run the rewrite again")

    def _snapshot(self, uri: str) -> tuple[str, int | None]:
        doc = self.ls.workspace.get_text_document(uri)
        try:
            return doc.source, doc.version
        except OSError as exc:  # not open in the editor and not readable on disk
            raise Refused(f"cannot read {uri}: open it in the editor first") from exc

    def _language(self, doc: Any) -> str | None:
        if doc.language_id and doc.language_id not in _NO_LANGUAGE:
            return doc.language_id
        from engine.prompt import language_for_path

        return language_for_path(doc.path or "")

    def _workspace_edit(self, uri: str, version: int | None,
                        edits: list[types.TextEdit]) -> types.WorkspaceEdit:
        caps = self.ls.client_capabilities.workspace
        versioned = bool(caps and caps.workspace_edit and caps.workspace_edit.document_changes)
        if versioned:
            # The editor itself refuses the edit if the document moved past `version`.
            return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=uri, version=version),
                edits=list(edits))])
        return types.WorkspaceEdit(changes={uri: list(edits)})

    # -- entry points ---------------------------------------------------------------------

    async def run_command(self, raw: Any) -> dict[str, Any]:
        """`specedit.rewriteSelection`: rewrite and apply; asks for the instruction if absent.

        Failures are shown to the user and returned as `{applied: false, reason}` rather
        than as an error response, which editors would show a second time.
        """
        try:
            request = RewriteRequest.from_wire(raw)
            if request.instruction is None:
                instruction = await self.ask_instruction()
                if instruction is None:
                    return {"applied": False, "reason": "no instruction was chosen"}
                request = dataclasses.replace(request, instruction=instruction)
            outcome = await self.compute(request)
            await self.apply(outcome)
        except Exception as exc:  # any failure: tell the user, keep serving
            return {"applied": False, "reason": self.report(exc).message}
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
            self.report(RewriteCancelled())
            raise
        except Exception as exc:  # shown to the user; the action stays empty
            self.report(exc)
            return action
        self.warn_if_cut_short(outcome)
        self.say_if_unchanged(outcome)
        action.edit = outcome.edit
        return action

    async def preview(self, raw: Any) -> dict[str, Any]:
        """`specedit/rewrite`: the edit and stats, applied by no one but the client."""
        raw = plain(raw)
        token = raw.get("workDoneToken") if isinstance(raw, Mapping) else None
        try:
            outcome = await self.compute(RewriteRequest.from_wire(raw), token)
        except asyncio.CancelledError:
            self.report(RewriteCancelled())
            raise
        except Exception as exc:  # the client gets the same line as an error
            failure = self.report(exc)
            code = _REQUEST_FAILED
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
        presets = self.ls.settings.presets
        if not presets:
            raise Refused("no instruction came with the command and specedit.presets is "
                          "empty: send an instruction or configure presets")
        choice = await self.ls.window_show_message_request_async(
            types.ShowMessageRequestParams(
                type=types.MessageType.Info,
                message="specedit: how should the selection be rewritten?",
                actions=[types.MessageActionItem(title=p) for p in presets]))
        return choice.title if choice is not None else None

    # -- telling the user -------------------------------------------------------------------

    def report(self, exc: BaseException, action: str = "the rewrite") -> Failure:
        """One actionable line to window/showMessage, the details to window/logMessage."""
        failure = describe(exc, action)
        self.ls.window_log_message(types.LogMessageParams(
            type=types.MessageType.Log if failure.cancelled else failure.type,
            message=failure.detail))
        self.ls.window_show_message(types.ShowMessageParams(
            type=failure.type, message=failure.message))
        return failure

    def warn_if_cut_short(self, outcome: Outcome) -> None:
        if outcome.result.finish_reason == "length":
            self.ls.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Warning,
                message="specedit: the rewrite stopped at specedit.maxNewTokens before the "
                        "model finished, so it may be cut short: raise it "
                        "(0 leaves room for about twice the selection)"))

    def say_if_unchanged(self, outcome: Outcome) -> None:
        if outcome.edit is None:
            self.ls.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Info,
                message="specedit: the model left the selection as it was; nothing to change"))
