"""Scripted edits over token "lines": what the pass-count tests feed the scripted model.

Tokens 0 and 1 are the stop token and the newline; lines draw from a small alphabet so that
n-grams repeat across lines as they do in real code.
"""

from __future__ import annotations

import random

STOP, NEWLINE, VOCAB = 0, 1, 64
PROMPT = [2, 3, 4, 5, 6]


def random_lines(rng: random.Random, count: int, low: int = 2, high: int = 12) -> list[list[int]]:
    # A small alphabet, so n-grams repeat across lines as they do in real code.
    return [[rng.randrange(2, 40) for _ in range(rng.randint(low, high))] + [NEWLINE]
            for _ in range(count)]


def flat(lines: list[list[int]]) -> list[int]:
    return [t for line in lines for t in line]


def apply_hunks(rng: random.Random, lines: list[list[int]], hunks: int
                 ) -> tuple[list[int], int]:
    """Apply non-overlapping edits; return the output and the bound on passes."""
    positions = sorted(rng.sample(range(len(lines)), hunks))
    out: list[list[int]] = []
    bound = 0
    prev = 0
    for k, pos in enumerate(positions):
        out += lines[prev:pos]
        kind = rng.choice(["insert", "delete", "replace"])
        new = random_lines(rng, rng.randint(1, 2), 1, 6)
        if kind == "insert":
            out += new + [lines[pos]]
        elif kind == "replace":
            out += new
        else:
            new = []
        prev = pos + 1
        # The first hunk: its new tokens + 4; each further one: its new tokens + 4 more.
        bound += len(flat(new)) + 4
        del k
    out += lines[prev:]
    return flat(out), bound
