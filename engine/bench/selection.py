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

from engine.rewriting.request import region_of_lines

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
    # A final newline added or dropped is no change to the last line.
    a, b = (_lines(t if t.endswith("\n") else t + "\n") for t in (before, after))
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [(i1, i2) for tag, i1, i2, _, _ in matcher.get_opcodes() if tag != "equal"]


def _touches(span: tuple[int, int], change: tuple[int, int]) -> bool:
    """Does a change of `before` lines [i1, i2) (an insertion when empty) touch a block?
    An insertion touches a block only when it lands strictly inside it."""
    start, end = span
    i1, i2 = change
    if i1 < i2:
        return i1 < end and start < i2
    return start < i1 < end


def _line_it_follows(lines: list[str], i1: int) -> int:
    """An insertion before line i1 follows the last non-blank line above it."""
    i = max(i1 - 1, 0)
    while i > 0 and not lines[i].strip():
        i -= 1
    return i


def changed_span(before: str, after: str) -> tuple[int, int]:
    """The lines `after` changes, widened to the top-level blocks they touch: [start, end)."""
    lines = _lines(before)
    changes = changed_ranges(before, after)
    if not changes:
        return 0, len(lines)
    start, end = len(lines), 0
    for i1, i2 in changes:
        if i1 == i2:  # select the line an insertion follows (usually a block's last line)
            i1 = _line_it_follows(lines, i1)
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
    lines = _lines(before)
    asked: set[tuple[int, int]] = set()
    for i1, i2 in changed_ranges(before, reference):
        # The reference's insertions also ask for the block they follow (a method appended
        # at the end of its class) and the one they precede.
        ranges = [(i1, i2)] if i1 < i2 else [(k, k + 1) for k in (_line_it_follows(lines, i1), i1)]
        asked |= {s for s in spans for r in ranges if _touches(s, r)}
    made = {s for s in spans for c in changed_ranges(before, rewritten) if _touches(s, c)}
    return bool(made - asked)
