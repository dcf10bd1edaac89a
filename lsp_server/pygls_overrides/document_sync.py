"""The server's copy of each open document, kept equal to the editor's under LSP's rules.

pygls splits lines with str.splitlines, which also ends lines at \\f, \\v, \\x1c-\\x1e, \\x85,
U+2028 and U+2029. LSP ends lines at \\n, \\r\\n and \\r only, so in a document holding any
of the others every incremental change after it lands on the wrong line, while the versions
still match. Here positions map to offsets the way editors compute them
(vscode-languageserver-textdocument's `offsetAt`): a line past the end means the end of the
text, a character past the end of its line means the end of that line (never inside its
line break), and columns count code units of the negotiated position encoding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# LSP's lines, each with its line break; the last one has none.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def lsp_lines(text: str) -> list[str]:
    """The lines of `text` as LSP counts them, with their line breaks."""
    return _LINE.findall(text)


def line_starts(text: str) -> list[int]:
    """The offset where each line starts; a text ending in a line break has an empty last line."""
    return [0, *(m.end() for m in _LINE_BREAK.finditer(text))]


def units_to_chars(line: str, units: int, encoding: str = types.PositionEncodingKind.Utf16) -> int:
    """How many characters of `line` the first `units` code units cover (rounding up inside
    a character, capped at the line's length)."""
    if encoding == types.PositionEncodingKind.Utf32:
        return min(units, len(line))
    count = 0
    for i, char in enumerate(line):
        if count >= units:
            return i
        code = ord(char)
        if encoding == types.PositionEncodingKind.Utf8:
            count += 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
        else:
            count += 2 if code > 0xFFFF else 1
    return len(line)


def offset_at(text: str, starts: Sequence[int], position: types.Position,
              encoding: str = types.PositionEncodingKind.Utf16) -> int:
    """The index in `text` of an LSP position."""
    if position.line >= len(starts):
        return len(text)
    if position.line < 0:
        return 0
    start = starts[position.line]
    end = starts[position.line + 1] if position.line + 1 < len(starts) else len(text)
    content = text[start:end].rstrip("\r\n")  # the line without its line break
    return start + units_to_chars(content, max(position.character, 0), encoding)


def apply_change(text: str, change: types.TextDocumentContentChangeEvent,
                 encoding: str = types.PositionEncodingKind.Utf16) -> str:
    """`text` after one content change of didChange."""
    if not isinstance(change, types.TextDocumentContentChangePartial):
        return change.text
    starts = line_starts(text)
    start = offset_at(text, starts, change.range.start, encoding)
    end = offset_at(text, starts, change.range.end, encoding)
    start, end = min(start, end), max(start, end)
    return text[:start] + change.text + text[end:]


class LspTextDocument(TextDocument):
    """pygls' document with LSP's line rules for `lines` and for incremental changes."""

    @property
    def lines(self) -> Sequence[str]:
        return tuple(lsp_lines(self.source))

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        encoding = self.position_codec.encoding or types.PositionEncodingKind.Utf16
        self._source = apply_change(self.source, change, encoding)


class LspWorkspace(Workspace):
    """pygls' workspace whose documents are LspTextDocuments."""

    def _create_text_document(self, doc_uri: str, source: str | None = None,
                              version: int | None = None,
                              language_id: str | None = None) -> TextDocument:
        return LspTextDocument(doc_uri, source=source, version=version, language_id=language_id,
                               sync_kind=self._sync_kind, position_codec=self._position_codec)


__all__ = ["LspTextDocument", "LspWorkspace", "apply_change", "line_starts", "lsp_lines",
           "offset_at", "units_to_chars"]
