"""The selection-to-region rule and the line diff, without a server."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st
from lsprotocol import types

from lsp_server.edits import fit_rewrite, line_edits, region_for, selected_lines, split_lines
from tests.helpers.lsp import apply_text_edits


def rng(l1: int, c1: int, l2: int, c2: int) -> types.Range:
    return types.Range(start=types.Position(line=l1, character=c1),
                       end=types.Position(line=l2, character=c2))


def test_split_lines_ends_lines_only_where_lsp_does():
    assert split_lines("a\nb\r\nc\rd") == ["a\n", "b\r\n", "c\r", "d"]
    assert split_lines("a\x0cb\u2028c\n") == ["a\x0cb\u2028c\n"]
    assert split_lines("") == []
    assert split_lines("\n\n") == ["\n", "\n"]


def test_selection_widens_to_whole_lines():
    assert selected_lines(rng(3, 2, 3, 2)) is None  # a cursor
    assert selected_lines(rng(3, 4, 3, 9)) == (3, 4)  # part of one line
    assert selected_lines(rng(3, 0, 5, 0)) == (3, 5)  # linewise: line 5 not included
    assert selected_lines(rng(3, 7, 5, 1)) == (3, 6)
    assert selected_lines(rng(5, 0, 3, 0)) is None  # reversed


def test_region_and_context():
    text = "".join(f"line {i}\n" for i in range(10))
    region = region_for(text, rng(4, 3, 5, 2), context_lines=2)
    assert region is not None
    assert (region.start_line, region.end_line) == (4, 6)
    assert region.text == "line 4\nline 5\n"
    assert region.context_before == "line 2\nline 3\n"
    assert region.context_after == "line 6\nline 7\n"
    assert region_for(text, rng(20, 0, 21, 0), 2) is None  # past the end


def test_fit_rewrite_keeps_line_endings():
    assert fit_rewrite("a\nb\n", "x\ny") == "x\ny\n"
    assert fit_rewrite("a\nb", "x\ny") == "x\ny"  # the file's last line has no ending
    assert fit_rewrite("a\r\nb\r\n", "x\ny") == "x\r\ny\r\n"
    assert fit_rewrite("a\n", "") == ""


def test_unchanged_lines_are_not_touched():
    text = "def f(x):\n    y = x + 1\n    return y\n"
    region = region_for(text, rng(0, 0, 3, 0), 0)
    assert region is not None
    new = "def f(x):\n    '''Add one.'''\n    y = x + 1\n    return y\n"
    edits = line_edits(region, new)
    assert [(e.range.start.line, e.range.end.line, e.new_text) for e in edits] == [
        (1, 1, "    '''Add one.'''\n")]
    assert line_edits(region, text) == []


def test_last_line_without_newline_uses_utf16_columns():
    text = "a\nb 😀"
    region = region_for(text, rng(1, 0, 1, 1), 0)
    assert region is not None
    (edit,) = line_edits(region, "c 😀 d")
    assert edit.range.end == types.Position(line=1, character=4)  # the emoji is 2 units
    (edit8,) = line_edits(region, "c", types.PositionEncodingKind.Utf8)
    assert edit8.range.end.character == 6


lines_st = st.lists(st.sampled_from(["a", "b", "c = 1", "    pass", "", "é😀"]), max_size=8)


@given(before=lines_st, old=lines_st.filter(bool), new=lines_st, after=lines_st,
       old_eol=st.booleans(), new_eol=st.booleans())
def test_edits_turn_the_region_into_the_rewrite_and_touch_nothing_else(
        before, old, new, after, old_eol, new_eol):
    head = "".join(f"{line}\n" for line in before)
    body = "\n".join(old) + ("\n" if old_eol or after else "")
    tail = "\n".join(after) + ("\n" if after and old_eol else "")
    assume(body)  # an empty last line is no selection
    text = head + body + tail
    selection = rng(len(before), 0, len(before) + len(old) - 1, 1)
    region = region_for(text, selection, 3)
    assert region is not None and region.text == body
    rewrite = fit_rewrite(body, "\n".join(new) + ("\n" if new_eol else ""))
    edits = line_edits(region, rewrite)
    assert apply_text_edits(text, edits) == head + rewrite + tail
    for edit in edits:
        assert region.start_line <= edit.range.start.line
        assert edit.range.end.line <= region.end_line
