"""The server's copy of a document equals the editor's after any incremental changes.

The reference is written independently of lsp_server.documents, the way editors do it
(vscode-languageserver-textdocument): the text as UTF-16 code units, lines ending at \\n,
\\r\\n or \\r only, a position past the end of its line clamped before the line break, a
line past the end meaning the end of the text.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.workspace import Workspace

from lsp_server.pygls_overrides.document_sync import LspTextDocument, LspWorkspace
from lsp_server.server import create_server

CR, LF = 13, 10
URI = "file:///tmp/doc.py"


class EditorDocument:
    """The reference: an editor's buffer in UTF-16 code units."""

    def __init__(self, text: str) -> None:
        raw = text.encode("utf-16-le", "surrogatepass")
        self.units = [int.from_bytes(raw[i : i + 2], "little") for i in range(0, len(raw), 2)]

    @property
    def text(self) -> str:
        raw = b"".join(u.to_bytes(2, "little") for u in self.units)
        return raw.decode("utf-16-le", "surrogatepass")

    def line_offsets(self) -> list[int]:
        offsets, i = [0], 0
        while i < len(self.units):
            if self.units[i] == CR and i + 1 < len(self.units) and self.units[i + 1] == LF:
                i += 1
            if self.units[i] in (CR, LF):
                offsets.append(i + 1)
            i += 1
        return offsets

    def offset_at(self, line: int, character: int) -> int:
        offsets = self.line_offsets()
        if line >= len(offsets):
            return len(self.units)
        start = offsets[line]
        if character <= 0:
            return start
        following = offsets[line + 1] if line + 1 < len(offsets) else len(self.units)
        offset = min(start + character, following)
        while offset > start and self.units[offset - 1] in (CR, LF):
            offset -= 1
        return offset

    def position_of(self, char_index: int) -> tuple[int, int]:
        """The (line, UTF-16 column) of a character index of the text."""
        unit = len(self.text[:char_index].encode("utf-16-le", "surrogatepass")) // 2
        offsets = self.line_offsets()
        line = max(i for i, start in enumerate(offsets) if start <= unit)
        return line, unit - offsets[line]

    def change(self, start: tuple[int, int], end: tuple[int, int], new: str) -> None:
        a, b = sorted((self.offset_at(*start), self.offset_at(*end)))
        self.units[a:b] = EditorDocument(new).units


def change_event(
    start: tuple[int, int], end: tuple[int, int], new: str
) -> types.TextDocumentContentChangePartial:
    return types.TextDocumentContentChangePartial(
        range=types.Range(start=types.Position(*start), end=types.Position(*end)), text=new
    )


def server_document(text: str) -> tuple[Workspace, types.VersionedTextDocumentIdentifier]:
    workspace = LspWorkspace(None, types.TextDocumentSyncKind.Incremental)
    workspace.put_text_document(
        types.TextDocumentItem(uri=URI, language_id="python", version=1, text=text)
    )
    return workspace, types.VersionedTextDocumentIdentifier(uri=URI, version=1)


# Every line break there is, the ones LSP counts and the ones it does not, and characters
# that take two UTF-16 code units.
ALPHABET = [
    "a",
    "b",
    " ",
    "\n",
    "\r",
    "\r\n",
    "\u2028",
    "\u2029",
    "\x0c",
    "\x0b",
    "\x85",
    "\x1c",
    "é",
    "😀",
]
texts = st.lists(st.sampled_from(ALPHABET), max_size=30).map("".join)


@st.composite
def changes(draw: st.DrawFn, text: str) -> tuple[tuple[int, int], tuple[int, int], str]:
    doc = EditorDocument(text)

    def position() -> tuple[int, int]:
        line, column = doc.position_of(draw(st.integers(0, len(text))))
        kind = draw(st.sampled_from(["exact", "exact", "past the line", "past the end"]))
        if kind == "past the line":  # into or past the line break: clamped before it
            offsets = [*doc.line_offsets(), len(doc.units)]
            content = doc.units[offsets[line] : offsets[line + 1]]
            while content and content[-1] in (CR, LF):
                content.pop()
            column = len(content) + draw(st.integers(1, 3))
        elif kind == "past the end":
            line = len(doc.line_offsets()) + draw(st.integers(0, 2))
        return line, column

    return position(), position(), draw(texts)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_incremental_changes_keep_the_servers_copy_equal_to_the_editors(
    data: st.DataObject,
) -> None:
    text = data.draw(texts)
    editor = EditorDocument(text)
    workspace, identifier = server_document(text)
    for version in range(2, 2 + data.draw(st.integers(1, 5))):
        start, end, new = data.draw(changes(editor.text))
        editor.change(start, end, new)
        identifier = types.VersionedTextDocumentIdentifier(uri=URI, version=version)
        workspace.update_text_document(identifier, change_event(start, end, new))
        document = workspace.get_text_document(URI)
        assert document.source == editor.text
        assert document.version == version


def test_the_reported_divergence_around_a_line_separator() -> None:
    text = "a = 1\ns = 'x\u2028y'\nb = 2\ndef f(x):\n    return x\n"
    workspace, _ = server_document(text)
    workspace.update_text_document(
        types.VersionedTextDocumentIdentifier(uri=URI, version=2), change_event((3, 4), (3, 5), "g")
    )
    assert workspace.get_text_document(URI).source == text.replace("def f", "def g")


def test_columns_count_code_units_of_the_negotiated_encoding() -> None:
    text = "é😀x\n"
    for encoding, column in [
        (types.PositionEncodingKind.Utf8, 6),
        (types.PositionEncodingKind.Utf16, 3),
        (types.PositionEncodingKind.Utf32, 2),
    ]:
        workspace = LspWorkspace(
            None, types.TextDocumentSyncKind.Incremental, position_encoding=encoding
        )
        workspace.put_text_document(
            types.TextDocumentItem(uri=URI, language_id="python", version=1, text=text)
        )
        workspace.update_text_document(
            types.VersionedTextDocumentIdentifier(uri=URI, version=2),
            change_event((0, column), (0, column + 1), "y"),
        )
        assert workspace.get_text_document(URI).source == "é😀y\n", encoding


def test_the_servers_workspace_uses_these_documents() -> None:
    """pygls creates the workspace in `initialize`; the protocol makes it ours."""
    protocol = create_server().protocol
    protocol._workspace = Workspace(None, types.TextDocumentSyncKind.Incremental)
    protocol.workspace.put_text_document(
        types.TextDocumentItem(uri=URI, language_id="python", version=1, text="x\u2028y")
    )
    document = protocol.workspace.get_text_document(URI)
    assert isinstance(document, LspTextDocument)
    assert list(document.lines) == ["x\u2028y"]
