"""A floor on forward passes for any proposer that only knows the original code.

Output tokens that a token-level diff cannot align with the original must each be decoded
by the model (one per pass at best); each edit hunk costs at least one more pass to
re-synchronise; and the first pass is needed to see anything at all.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def lower_bound_passes(original: Sequence[int], output: Sequence[int]) -> tuple[int, int, int]:
    """(bound, unaligned output tokens, hunks)."""
    matcher = difflib.SequenceMatcher(a=list(original), b=list(output), autojunk=False)
    unaligned = hunks = 0
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        hunks += 1
        if tag in ("insert", "replace"):
            unaligned += j2 - j1
    return 1 + unaligned + hunks, unaligned, hunks
