"""The language server: one thin handler per LSP feature, calling into plain modules.

This module wires the parts together (no other module imports it): the rewrite service gets
the opened documents, a reporter, the engine worker's submit and the editor's requests as
narrow collaborators. Nothing here imports the engine (torch, seconds): the handshake
answers at once and the engine thread imports and loads the model after `initialized`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from . import __version__
from .actions import COMMAND, KIND, code_actions
from .documents import OpenDocuments
from .edits import region_for
from .engines import EngineChoice
from .messages import Reporter
from .progress import RewriteProgress
from .pygls_overrides.protocol import SpecEditProtocol
from .remote import RemoteEngine
from .service import Collaborators, EditorSupport, RewriteService
from .settings import SECTION, Settings, parse_settings, section_of
from .wire import status_params
from .worker import EngineStatus, EngineWorker

logger = logging.getLogger(__name__)

STATUS = "specedit/status"
REWRITE_REQUEST = "specedit/rewrite"


class SpecEditServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("specedit", __version__, protocol_cls=SpecEditProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.settings = Settings()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.initialized = False  # models load only after the handshake
        # The in-process engine, or an OpenAI-compatible endpoint when specedit.endpoint
        # names one: chosen per job by its settings, behind one interface.
        self.worker = EngineChoice(
            local=EngineWorker(on_status=self.threadsafe(self.on_engine_status),
                               log=self.threadsafe(self.log)),
            remote=RemoteEngine(on_status=self.threadsafe(self.on_engine_status),
                                log=self.threadsafe(self.log)))
        # Only what didOpen/didChange sent: never a file the editor did not open.
        self.documents = OpenDocuments(lambda: self.workspace)
        self.reporter = Reporter(self.window_show_message, self.window_log_message)
        self.rewrites = RewriteService(Collaborators(
            documents=self.documents,
            reporter=self.reporter,
            settings=lambda: self.settings,
            submit=self.worker.submit,
            start_progress=lambda token: RewriteProgress.start(self, token),
            apply_edit=self.workspace_apply_edit_async,
            ask=self.window_show_message_request_async,
            editor_support=self.editor_support,
            request_id=lambda: self.protocol.msg_id,
            on_loop=self.threadsafe,
            send_progress=lambda token, value: self.protocol.notify(
                types.PROGRESS, types.ProgressParams(token=token, value=value))))
        self.protocol.on_cancel_request = self.rewrites.cancel_request

    def threadsafe(self, fn: Callable[..., Any]) -> Callable[..., None]:
        """`fn` wrapped to run on the event loop, for callbacks from the engine thread."""

        def call(*args: Any) -> None:
            if self.loop is not None and not self.loop.is_closed():
                self.loop.call_soon_threadsafe(fn, *args)

        return call

    def log(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.reporter.log(kind, message)

    def editor_support(self) -> EditorSupport:
        caps = self.client_capabilities.workspace
        return EditorSupport(
            versioned_edits=bool(caps and caps.workspace_edit
                                 and caps.workspace_edit.document_changes),
            position_encoding=self.workspace.position_encoding or "utf-16")

    def apply_settings(self, raw: Any) -> None:
        """Take a client's settings; a different model, device or dtype reloads the model."""
        section = section_of(raw)
        if section is None:
            return
        previous = self.settings
        self.settings, problems = parse_settings(section, previous)
        for problem in problems:
            self.reporter.show(types.MessageType.Warning, f"specedit: {problem}")
        self.log(f"settings: {self.settings}")
        if self.settings.model_spec != previous.model_spec and self.initialized:
            self.worker.preload(self.settings.model_spec)

    async def pull_settings(self) -> Any:
        """The `specedit` section by `workspace/configuration`, if the client has it."""
        workspace = self.client_capabilities.workspace
        if not (workspace and workspace.configuration):
            return None
        try:
            result = await asyncio.wait_for(self.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])), 5)
        except Exception as exc:  # fall back to what the client sent
            logger.warning("workspace/configuration failed: %s", exc)
            return None
        return result[0] if result else None

    async def refresh_settings(self) -> None:
        pulled = await self.pull_settings()
        if pulled is not None:
            self.apply_settings(pulled)

    def on_engine_status(self, status: EngineStatus) -> None:
        self.protocol.notify(STATUS, status_params(status))
        if status.error is not None:  # a background load failed: no request will tell
            self.reporter.report(status.error, "loading the model")
        elif status.state in ("loading", "ready") and status.message:
            self.log(f"{status.model}: {status.message}")

    def shutdown(self) -> None:
        self.worker.stop()
        super().shutdown()


# -- handlers -------------------------------------------------------------------------------

def on_initialize(ls: SpecEditServer, params: types.InitializeParams) -> None:
    ls.loop = asyncio.get_running_loop()
    if params.initialization_options is not None:
        ls.apply_settings(params.initialization_options)


async def on_initialized(ls: SpecEditServer, params: types.InitializedParams) -> None:
    pulled = await ls.pull_settings()
    if pulled is not None:
        ls.apply_settings(pulled)
    # In the background: the handshake is over and requests are answered meanwhile.
    ls.initialized = True
    ls.worker.preload(ls.settings.model_spec)


def on_did_change_configuration(ls: SpecEditServer,
                                params: types.DidChangeConfigurationParams) -> None:
    if section_of(params.settings) is not None:
        # Applied before the next message is read, so a request sent after it sees it.
        ls.apply_settings(params.settings)
    else:  # a pull-model client only says "changed": ask for the section
        asyncio.ensure_future(ls.refresh_settings())


def on_code_action(ls: SpecEditServer,
                   params: types.CodeActionParams) -> list[types.CodeAction | types.Command]:
    # A document the editor did not open gets none, without a look at the disk: whether
    # actions are offered must not tell whether a path exists.
    doc = ls.documents.opened(params.text_document.uri)
    if doc is None:
        return []
    region = region_for(doc.text, params.range, 0)
    if region is None or not region.text.strip():
        return []
    return code_actions(doc.uri, params.range, doc.version, ls.settings.presets,
                        ls.client_capabilities, params.context.only)


async def on_code_action_resolve(ls: SpecEditServer,
                                 action: types.CodeAction) -> types.CodeAction:
    return await ls.rewrites.resolve(action)


async def on_rewrite_selection(ls: SpecEditServer, *args: Any) -> dict[str, Any]:
    return await ls.rewrites.run_command(args[0] if args else None)


async def on_rewrite_request(ls: SpecEditServer, params: Any) -> dict[str, Any]:
    return await ls.rewrites.preview(params)


def on_progress_cancel(ls: SpecEditServer, params: types.WorkDoneProgressCancelParams) -> None:
    ls.rewrites.cancel_token(params.token)


def on_shutdown(ls: SpecEditServer, params: None) -> None:
    ls.rewrites.cancel_all()
    ls.worker.stop()


def create_server() -> SpecEditServer:
    ls = SpecEditServer()
    ls.feature(types.INITIALIZE)(on_initialize)
    ls.feature(types.INITIALIZED)(on_initialized)
    ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(on_did_change_configuration)
    ls.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[KIND], resolve_provider=True))(on_code_action)
    ls.feature(types.CODE_ACTION_RESOLVE)(on_code_action_resolve)
    ls.command(COMMAND)(on_rewrite_selection)
    ls.feature(REWRITE_REQUEST)(on_rewrite_request)
    ls.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)(on_progress_cancel)
    ls.feature(types.SHUTDOWN)(on_shutdown)
    return ls


__all__ = ["SpecEditServer", "create_server"]
