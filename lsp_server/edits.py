"""From a selection to the region the model rewrites, and from its rewrite to TextEdits.

A selection is widened to whole lines: from the start of its first line through the end of
its last line, where a selection that ends at column 0 of a line does not include that line
(what a linewise selection sends). Models rewrite whole lines far better than fragments, and
line-based edits keep the diff small. Nothing outside those lines is ever edited.
"""

from __future__ import annotations

import difflib
import re

from lsprotocol import types

from engine.rewriting.request import Region, region_of_lines

# LSP ends lines at \n, \r\n or \r only (str.splitlines also splits at \f, \x1c, \u2028...).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def split_lines(text: str) -> list[str]:
    """Lines with their endings; the last one has none unless the text ends with one."""
    return _LINE.findall(text)


def _ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")):]


def code_units(text: str, encoding: str = types.PositionEncodingKind.Utf16) -> int:
    """Length of `text` in the position encoding the client and server agreed on."""
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def selected_lines(selection: types.Range) -> tuple[int, int] | None:
    """[first, last + 1) of the lines a non-empty selection covers, or None when it is empty."""
    start, end = selection.start, selection.end
    if (end.line, end.character) <= (start.line, start.character):
        return None
    last = end.line - 1 if end.character == 0 and end.line > start.line else end.line
    return start.line, last + 1


def region_for(source: str, selection: types.Range, context_lines: int) -> Region | None:
    """The whole lines a selection covers, with context; None if it covers no line.

    Lines are split by LSP's rules; the slicing is engine.request's, as in every front end.
    """
    span = selected_lines(selection)
    if span is None:
        return None
    lines = split_lines(source)
    if span[0] >= min(span[1], len(lines)):
        return None
    return region_of_lines(lines, span[0], span[1], context_lines)


def fit_rewrite(region_text: str, rewrite: str) -> str:
    """The rewrite with the region's line-ending convention.

    A region of whole lines ends with a line ending unless it is the end of the file; a
    rewrite that lost it would glue the next line onto its last line. Models write \\n, so a
    CRLF file gets its \\r back.
    """
    lines = split_lines(region_text)
    if not lines:
        return rewrite
    first_ending = _ending(lines[0]) or "\n"
    if first_ending == "\r\n":
        rewrite = re.sub(r"(?<!\r)\n", "\r\n", rewrite)
    last_ending = _ending(lines[-1])
    if last_ending and rewrite and not rewrite.endswith(("\n", "\r")):
        rewrite += last_ending
    return rewrite


def fit_partial(region_text: str, partial: str) -> str:
    """A partial rewrite with the region's line endings (no line ending added at its end)."""
    lines = split_lines(region_text)
    if lines and _ending(lines[0]) == "\r\n":
        partial = re.sub(r"(?<!\r)\n", "\r\n", partial)
    return partial


def region_range(region: Region, encoding: str = types.PositionEncodingKind.Utf16) -> types.Range:
    """The whole lines of the region: to the start of the next line, or the document's end."""
    lines = split_lines(region.text)
    end = types.Position(line=region.end_line, character=0)
    if lines and not _ending(lines[-1]):
        end = types.Position(line=region.start_line + len(lines) - 1,
                             character=code_units(lines[-1], encoding))
    return types.Range(start=types.Position(line=region.start_line, character=0), end=end)


def line_edits(region: Region, new_text: str,
               encoding: str = types.PositionEncodingKind.Utf16) -> list[types.TextEdit]:
    """The fewest whole-line TextEdits that turn the region's lines into `new_text`'s.

    Unchanged lines are left alone, so the editor keeps their cursors, marks and undo history.
    """
    old = split_lines(region.text)
    new = split_lines(new_text)

    def position(i: int) -> types.Position:
        if i < len(old) or (old and _ending(old[-1])):
            return types.Position(line=region.start_line + i, character=0)
        # The end of a last line that has no line ending: the end of the document.
        last = old[-1]
        return types.Position(line=region.start_line + len(old) - 1,
                              character=code_units(last, encoding))

    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    edits: list[types.TextEdit] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits.append(types.TextEdit(range=types.Range(start=position(i1), end=position(i2)),
                                    new_text="".join(new[j1:j2])))
    return edits
