"""Forward-pass counts of speculative edits (never times: the machines are shared and noisy).

The scripted model's greedy output is chosen by the test, so the pass count for a known
edit can be bounded exactly (at most the edit's new tokens + a small constant per hunk).
"""

from __future__ import annotations

import random

from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.decoding import StopTokens, verify_loop
from engine.methods import ORIGINAL_ONLY, MethodConfig, build_proposer
from engine.runner import ModelRunner
from tests.helpers.scripted_model import ScriptedModel

STOP, NEWLINE, VOCAB = 0, 1, 64
PROMPT = [2, 3, 4, 5, 6]


def random_lines(rng: random.Random, count: int, low: int = 2, high: int = 12) -> list[list[int]]:
    # A small alphabet, so n-grams repeat across lines as they do in real code.
    return [[rng.randrange(2, 40) for _ in range(rng.randint(low, high))] + [NEWLINE]
            for _ in range(count)]


def flat(lines: list[list[int]]) -> list[int]:
    return [t for line in lines for t in line]


def passes_for(original: list[int], output: list[int], method: str = "speculative") -> int:
    """Run speculative edits where greedy would write `output`; check it and count passes."""
    script = output + [STOP]
    model = ScriptedModel(len(PROMPT), script, VOCAB)
    proposer = build_proposer(MethodConfig(method), prompt=PROMPT, original=original + [STOP])
    result = verify_loop(ModelRunner(model), PROMPT, proposer,
                         StopTokens(frozenset({STOP})), max_new_tokens=len(script) + 10)
    assert result.tokens == output
    assert result.stats.forward_passes == model.calls
    return result.stats.forward_passes


def test_unchanged_region_of_2000_tokens_takes_at_most_two_passes() -> None:
    rng = random.Random(0)
    region: list[int] = []
    while len(region) < 2000:
        region += random_lines(rng, 1)[0]
    region = region[:2000]
    assert passes_for(region, region) <= 2


def test_repeated_lines_unchanged_take_one_pass() -> None:
    line = [7, 8, 9, NEWLINE]
    region = line * 200
    assert passes_for(region, region) == 1


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), m=st.integers(1, 30), count=st.integers(1, 80))
def test_one_inserted_line_costs_at_most_its_tokens_plus_four(seed: int, m: int,
                                                              count: int) -> None:
    rng = random.Random(seed)
    lines = random_lines(rng, count)
    at = rng.randint(0, count)
    inserted = [rng.randrange(2, 60) for _ in range(m - 1)] + [NEWLINE]
    output = flat(lines[:at]) + inserted + flat(lines[at:])
    assert passes_for(flat(lines), output) <= m + 4


def _apply_hunks(rng: random.Random, lines: list[list[int]], hunks: int
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


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), hunks=st.integers(1, 4))
# A deleted line, then a strong match further on that one newline confirmed by chance: the
# pointer jumped past the true place and the next 45 passes drafted a token each (56 passes).
@example(seed=2032, hunks=3)
def test_each_edit_hunk_costs_at_most_its_new_tokens_plus_four(seed: int, hunks: int) -> None:
    rng = random.Random(seed)
    lines = random_lines(rng, rng.randint(2 * hunks + 2, 60))
    output, bound = _apply_hunks(rng, lines, hunks)
    assert passes_for(flat(lines), output) <= bound


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), m=st.integers(4, 12), copies=st.integers(2, 5))
def test_new_code_that_repeats_itself_is_drafted_by_lookup(seed: int, m: int,
                                                           copies: int) -> None:
    """New lines the original does not have, written several times (a second method shaped
    like the first): the first copy costs a pass per token, later copies are drafted from it."""
    rng = random.Random(seed)
    lines = random_lines(rng, rng.randint(4, 30), high=8)  # tokens 2..39
    new_line = [rng.randrange(40, 60) for _ in range(m - 1)] + [NEWLINE]  # not in the original
    at = rng.randint(0, len(lines))
    output = flat(lines[:at]) + new_line * copies + flat(lines[at:])
    with_lookup = passes_for(flat(lines), output)
    alone = passes_for(flat(lines), output, ORIGINAL_ONLY)
    # Later copies: a pass or two each (lookup drafts 10 tokens at a time without a curve).
    assert with_lookup <= m + 4 + 3 * (copies - 1)
    assert alone >= m * copies - 1  # the original alone: a token per pass for every copy
    assert with_lookup < alone
