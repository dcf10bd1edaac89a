"""Which part of a CanItEdit problem the model rewrites, and which edits stray outside it.

Whole-file mode rewrites all of `before` with no context (the benchmark's own setting).
Changed mode imitates an editor selection: the lines the reference solution (`after`)
changes, widened to the top-level function or class around them, are rewritten, and up to
N lines on each side are given as context; the rewritten selection is put back between the
untouched lines before the tests run.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass

from ..request import region_of_lines

# Selection modes of `specedit eval --selection`.
WHOLE_FILE = "file"
CHANGED = "changed"
SELECTION_MODES = (WHOLE_FILE, CHANGED)


@dataclass(frozen=True)
class Split:
    """`before` cut into what the model rewrites and the lines around it."""

    prefix: str  # every line above the selection (the tests see all of it)
    selection: str
    suffix: str  # every line below the selection
    context_before: str  # the part of prefix the model sees
    context_after: str  # the part of suffix the model sees

    def reassemble(self, rewritten: str) -> str:
        return self.prefix + rewritten + self.suffix


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def top_level_spans(source: str) -> list[tuple[int, int]] | None:
    """0-based [start, end) line spans of the module's top-level statements, decorators
    included; None when the source does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    spans = []
    for node in tree.body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        spans.append((first - 1, node.end_lineno or node.lineno))
    return spans


def changed_ranges(before: str, after: str) -> list[tuple[int, int]]:
    """0-based [start, end) ranges of `before` lines that `after` replaces or deletes; an
    insertion is an empty range at the line it goes before."""
    matcher = difflib.SequenceMatcher(None, _lines(before), _lines(after), autojunk=False)
    return [(i1, i2) for tag, i1, i2, _, _ in matcher.get_opcodes() if tag != "equal"]


def _touches(span: tuple[int, int], change: tuple[int, int], *, lenient: bool) -> bool:
    start, end = span
    i1, i2 = change
    if i1 < i2:
        return i1 < end and start < i2
    # An insertion: strictly inside the block; lenient also counts the block it follows or
    # precedes (the reference appends a method at the end of its class).
    return start < i1 < end or (lenient and start <= i1 <= end)


def changed_span(before: str, after: str) -> tuple[int, int]:
    """The lines `after` changes, widened to the top-level blocks they touch: [start, end)."""
    lines = _lines(before)
    changes = changed_ranges(before, after)
    if not changes:
        return 0, len(lines)
    start, end = len(lines), 0
    for i1, i2 in changes:
        if i1 == i2:
            # An insertion goes after line i1-1: select the last non-blank line before it
            # (usually the end of the block the new code follows).
            i1 = max(i1 - 1, 0)
            while i1 > 0 and not lines[i1].strip():
                i1 -= 1
            i2 = i1 + 1
        start, end = min(start, i1), max(end, i2)
    for span_start, span_end in top_level_spans(before) or []:
        if span_start < end and start < span_end:
            start, end = min(start, span_start), max(end, span_end)
    return start, end


def split_problem(before: str, after: str, mode: str, context_lines: int) -> Split:
    if mode == WHOLE_FILE:
        return Split("", before, "", "", "")
    if mode != CHANGED:
        raise ValueError(f"unknown selection mode {mode!r}")
    lines = _lines(before)
    start, end = changed_span(before, after)
    region = region_of_lines(lines, start, end, context_lines)
    return Split(prefix="".join(lines[:start]), selection=region.text,
                 suffix="".join(lines[end:]), context_before=region.context_before,
                 context_after=region.context_after)


def edits_outside_request(before: str, reference: str, rewritten: str) -> bool:
    """Did the rewrite change a top-level block of `before` that the reference solution leaves
    alone? A cheap hint for failures, not a verdict: edits between blocks never count, and a
    legitimately wider edit (a helper the reference did not need) counts."""
    spans = top_level_spans(before)
    if not spans:
        return False
    asked = {s for s in spans
             for c in changed_ranges(before, reference) if _touches(s, c, lenient=True)}
    made = {s for s in spans
            for c in changed_ranges(before, rewritten) if _touches(s, c, lenient=False)}
    return bool(made - asked)
