"""What `specedit eval --selection changed` rewrites, and the edit-outside-request hint."""

from __future__ import annotations

import pytest

from engine.bench.selection import (
    CHANGED,
    WHOLE_FILE,
    changed_span,
    edits_outside_request,
    split_problem,
)

BEFORE = (
    "import os\n"                      # 0
    "\n"                               # 1
    "\n"                               # 2
    "@decorator\n"                     # 3
    "def first(a):\n"                  # 4
    "    return a\n"                   # 5
    "\n"                               # 6
    "\n"                               # 7
    "class Second:\n"                  # 8
    "    def method(self):\n"          # 9
    "        return 1\n"               # 10
    "\n"                               # 11
    "\n"                               # 12
    "def third():\n"                   # 13
    "    return 3"                     # 14 (no final newline, as in many CanItEdit files)
)


def _replace(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


def test_a_change_inside_a_method_selects_its_top_level_class() -> None:
    after = _replace(BEFORE, "        return 1\n", "        return 2\n")
    assert changed_span(BEFORE, after) == (8, 11)
    split = split_problem(BEFORE, after, CHANGED, context_lines=2)
    assert split.selection.startswith("class Second:") and split.selection.endswith("return 1\n")
    assert split.context_before == "\n\n" and split.context_after == "\n\n"
    assert split.reassemble(split.selection) == BEFORE
    assert split.reassemble("class Second:\n    pass\n") == _replace(
        BEFORE, "    def method(self):\n        return 1\n", "    pass\n")


def test_decorators_belong_to_their_function() -> None:
    after = _replace(BEFORE, "    return a\n", "    return -a\n")
    assert changed_span(BEFORE, after) == (3, 6)


def test_an_appended_function_selects_the_block_it_follows() -> None:
    after = BEFORE + "\n\n\ndef fourth():\n    return 4\n"
    start, end = changed_span(BEFORE, after)
    assert (start, end) == (13, 15)  # third(), the last line included
    split = split_problem(BEFORE, after, CHANGED, context_lines=0)
    assert split.selection == "def third():\n    return 3" and split.suffix == ""


def test_changes_in_two_blocks_select_everything_between() -> None:
    after = _replace(_replace(BEFORE, "import os\n", "import sys\n"), "return 3", "return 4")
    assert changed_span(BEFORE, after) == (0, 15)


def test_code_that_does_not_parse_selects_only_the_changed_lines() -> None:
    before = "def f(:\n    x = 1\n    y = 2\n"
    assert changed_span(before, before.replace("y = 2", "y = 3")) == (2, 3)


def test_whole_file_mode_has_no_context() -> None:
    split = split_problem(BEFORE, BEFORE + "\n", WHOLE_FILE, context_lines=20)
    assert (split.prefix, split.selection, split.suffix) == ("", BEFORE, "")
    assert split.context_before == split.context_after == ""
    with pytest.raises(ValueError, match="unknown selection mode"):
        split_problem(BEFORE, BEFORE, "lines", 0)


def test_edit_outside_request_flags_blocks_the_reference_leaves_alone() -> None:
    reference = _replace(BEFORE, "        return 1\n", "        return 2\n")
    assert not edits_outside_request(BEFORE, reference, reference)
    # The same edit plus a change to first(): outside the request.
    assert edits_outside_request(BEFORE, reference, _replace(reference, "return a", "return 0"))
    # Blank lines and a function appended between blocks never count.
    assert not edits_outside_request(BEFORE, reference, reference + "\n\ndef extra():\n    pass\n")
    # The reference appends a method at the end of the class: an insertion there is asked for.
    appended = _replace(BEFORE, "        return 1\n", "        return 1\n\n    def more(self):\n"
                        "        return 2\n")
    inside = _replace(BEFORE, "    def method(self):\n", "    def more(self):\n        return 2\n\n"
                      "    def method(self):\n")
    assert not edits_outside_request(BEFORE, appended, inside)
