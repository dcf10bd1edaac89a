"""A scripted editor for the LSP tests, the sample document, and the engine as reference."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import attrs
from lsprotocol import converters, types
from pygls.protocol import default_converter
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

converter = converters.get_converter()


def plain(value: Any) -> Any:
    """pygls returns custom responses as namedtuples: back to dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "__attrs_attrs__"):
        return converter.unstructure(value)
    return value


def _offset(text: str, position: types.Position) -> int:
    """Index in `text` of an LSP position (lines end at \n, \r\n or \r; UTF-16 columns)."""
    lines = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", text)
    if position.line >= len(lines):
        return len(text)
    offset = sum(len(line) for line in lines[:position.line])
    line, units, i = lines[position.line].rstrip("\r\n"), 0, 0
    while i < len(line) and units < position.character:
        units += 2 if ord(line[i]) > 0xFFFF else 1
        i += 1
    return offset + i


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Edits all refer to the original text, so apply them from the last to the first."""
    spans = sorted(((_offset(text, e.range.start), _offset(text, e.range.end), e.new_text)
                    for e in edits), reverse=True)
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


def edits_for(edit: types.WorkspaceEdit | dict[str, Any], uri: str) -> list[types.TextEdit]:
    """The TextEdits for `uri` in a WorkspaceEdit, whether it uses documentChanges or changes."""
    if isinstance(edit, dict):
        edit = converter.structure(edit, types.WorkspaceEdit)
    found: list[types.TextEdit] = []
    for change in edit.document_changes or []:
        assert isinstance(change, types.TextDocumentEdit), change
        if change.text_document.uri == uri:
            found += [e for e in change.edits if isinstance(e, types.TextEdit)]
    for change_uri, text_edits in (edit.changes or {}).items():
        if change_uri == uri:
            found += list(text_edits)
    return found


def stale_version(edit: types.WorkspaceEdit, docs: Mapping[str, tuple[str, int]]) -> str | None:
    """Why an editor refuses `edit`: a TextDocumentEdit for a version its document is no
    longer at; None when every versioned change is for the current version."""
    for change in edit.document_changes or []:
        if not isinstance(change, types.TextDocumentEdit):
            continue
        uri, version = change.text_document.uri, change.text_document.version
        if uri in docs and version is not None and version != docs[uri][1]:
            return f"{uri} is at version {docs[uri][1]}, the edit is for version {version}"
    return None


@dataclass
class Editor:
    """What the scripted editor remembers: its documents and everything the server sent."""

    docs: dict[str, tuple[str, int]] = field(default_factory=dict)
    applied: list[types.ApplyWorkspaceEditParams] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    asked: list[types.ShowMessageRequestParams] = field(default_factory=list)
    # Partial results ($/progress values without a `kind`), by partialResultToken.
    partials: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)
    answer: Callable[[types.ShowMessageRequestParams], types.MessageActionItem | None] = (
        lambda params: params.actions[0] if params.actions else None)


@attrs.define
class RawResponse:
    id: Any
    jsonrpc: str
    result: Any = None


def _command_or_code_action(obj: Any, _: Any) -> types.Command | types.CodeAction:
    if isinstance(obj.get("command"), str):
        return converter.structure(obj, types.Command)
    return converter.structure(obj, types.CodeAction)


def make_client() -> LanguageClient:
    """pytest-lsp's client, plus an editor's answers to applyEdit and showMessageRequest."""
    editor = Editor()
    work_done = DEFAULT_CLIENT_FEATURES[types.PROGRESS]

    def progress(client: LanguageClient, params: types.ProgressParams) -> None:
        # pytest-lsp knows only work-done progress (it raises on a value without `kind`).
        value = plain(params.value)
        if isinstance(value, dict) and "kind" not in value:
            editor.partials.setdefault(params.token, []).append(value)
        else:
            work_done(client, params)

    client = LanguageClient(converter_factory=default_converter)
    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, types.PROGRESS: progress})
    # lsprotocol 2025.0.0 reads every code action that has a `command` as a Command, losing
    # its kind and title; editors parse JSON themselves, so tell the two apart as they do.
    client.protocol._converter.register_structure_hook(
        types.Command | types.CodeAction, _command_or_code_action)
    # pygls turns responses to custom requests into namedtuples, which mangle keys that are
    # not identifiers (the URIs in WorkspaceEdit.changes): keep specedit/rewrite's as JSON.
    result_type = client.protocol.get_result_type
    client.protocol.get_result_type = (  # type: ignore[method-assign]
        lambda method: RawResponse if method == "specedit/rewrite" else result_type(method))
    client.editor = editor  # type: ignore[attr-defined]

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        editor.applied.append(params)
        # As editors do: an edit for a version the document has moved past is refused whole.
        if (stale := stale_version(params.edit, editor.docs)) is not None:
            return types.ApplyWorkspaceEditResult(applied=False, failure_reason=stale)
        for uri, (text, _version) in list(editor.docs.items()):
            edits = edits_for(params.edit, uri)
            if edits:
                change_text(client, uri, apply_text_edits(text, edits))
        return types.ApplyWorkspaceEditResult(applied=True)

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def ask(params: types.ShowMessageRequestParams) -> types.MessageActionItem | None:
        editor.asked.append(params)
        return editor.answer(params)

    @client.feature("specedit/status")
    def status(params: Any) -> None:
        editor.statuses.append(plain(params))

    return client


def editor_of(client: LanguageClient) -> Editor:
    return client.editor  # type: ignore[attr-defined]


def open_doc(client: LanguageClient, uri: str, text: str, language: str = "python") -> None:
    editor_of(client).docs[uri] = (text, 1)
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1,
                                             text=text)))


def change_text(client: LanguageClient, uri: str, text: str) -> None:
    """Replace the whole text (as didChange), the way the editor's buffer changed."""
    _, version = editor_of(client).docs[uri]
    editor_of(client).docs[uri] = (text, version + 1)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version + 1),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


def text_of(client: LanguageClient, uri: str) -> str:
    return editor_of(client).docs[uri][0]


async def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        await asyncio.sleep(0.02)


async def start_session(client: LanguageClient, settings: Mapping[str, Any], *,
                        capabilities: str = "visual-studio-code",
                        wait_ready: bool = True) -> list[dict[str, Any]]:
    """initialize + initialized as `capabilities`' editor would send them (pytest-lsp's
    client profiles), then, with wait_ready, wait until the server reports the model ready or
    failed (it loads in the background after `initialized`). The statuses so far."""
    await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities(capabilities),
        initialization_options=dict(settings)))
    if not wait_ready:
        return editor_of(client).statuses
    return await wait_for(lambda: [s for s in editor_of(client).statuses
                                   if s["state"] in ("ready", "error")],
                          what="specedit/status ready")


def tokens_reported(client: LanguageClient) -> list[Any]:
    """Progress tokens that have reported generated tokens (the engine is decoding)."""
    return [token for token, values in client.progress_reports.items()
            if any(isinstance(v, types.WorkDoneProgressReport) and v.message
                   and "tokens/s" in v.message for v in values)]


# A real file's worth of Python: the selection in most tests is `area` (lines 9-11).
SAMPLE = '''\
"""Shapes."""

import math

PI = math.pi


def area(radius):
    r2 = radius * radius
    return PI * r2


def perimeter(radius):
    return 2 * PI * radius


if __name__ == "__main__":
    print(area(2), perimeter(2))
'''

# Few tokens and little context keep each rewrite of the tiny model well under a second.
TEST_SETTINGS: dict[str, Any] = {
    "device": "cpu",
    "dtype": "float32",
    "method": "speculative",
    "maxNewTokens": 16,
    "contextLines": 3,
    "presets": ["Add docstrings", "Add type hints"],
}


@dataclass
class Reference:
    """The engine, called directly: what the server must produce."""

    loaded: Any

    def rewrite(self, text: str, first: int, end: int, instruction: str,
                settings: dict[str, Any] = TEST_SETTINGS) -> Any:
        import engine

        lines = text.splitlines(keepends=True)
        ctx = settings["contextLines"]
        return engine.rewrite(
            self.loaded, "".join(lines[first:end]), instruction, language="python",
            context_before="".join(lines[max(0, first - ctx):first]),
            context_after="".join(lines[end:end + ctx]),
            method=settings["method"], max_new_tokens=settings["maxNewTokens"] or None)

    def document_after(self, text: str, first: int, end: int, instruction: str,
                       settings: dict[str, Any] = TEST_SETTINGS) -> str:
        """The whole document once lines [first, end) are replaced by the rewrite."""
        lines = text.splitlines(keepends=True)
        new = self.rewrite(text, first, end, instruction, settings).text
        if new and not new.endswith(("\n", "\r")):
            new += "\n"  # the server keeps the region's final line ending
        return "".join(lines[:first]) + new + "".join(lines[end:])
