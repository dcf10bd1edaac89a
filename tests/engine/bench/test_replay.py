"""The replay (engine/bench/replay.py) counts the passes the real verifying loop makes: same
proposer, same greedy output, same count, checked against the loop driving a scripted model."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.bench.methods import parse_bench_method
from engine.bench.replay import replay, table
from engine.decode.draft_length import PassCostCurve
from engine.decode.loop import decode
from engine.decode.methods import build_proposer, parse_method
from engine.decode.runner import ModelRunner
from engine.decode.stopping import StopTokens
from tests.helpers.scripted_edits import PROMPT, VOCAB, flat, random_lines
from tests.helpers.scripted_model import ScriptedModel

CURVE = PassCostCurve(1.0, 0.1, "declared")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000),
       method=st.sampled_from(["greedy", "speculative", "speculative-original",
                               "speculative:4", "prompt-lookup"]))
def test_replay_counts_the_passes_of_the_real_loop(seed: int, method: str) -> None:
    rng = random.Random(seed)
    lines = random_lines(rng, rng.randint(1, 20))
    edited = [line for line in lines if rng.random() > 0.2]
    edited.insert(rng.randint(0, len(edited)), [rng.randrange(40, 60) for _ in range(5)])
    original, output = flat(lines), flat(edited)

    def proposer():
        return build_proposer(parse_bench_method(method), prompt=PROMPT, original=original,
                              cost=CURVE)

    model = ScriptedModel(len(PROMPT), output, VOCAB, CURVE)
    real = decode(ModelRunner(model), PROMPT, proposer(), StopTokens(), len(output))
    assert real.tokens == output
    replayed = replay(proposer(), output, CURVE)
    assert replayed.passes == real.stats.forward_passes
    assert replayed.drafted == real.stats.drafted_tokens
    # Each pass costs a + b * (1 + its draft).
    assert replayed.seconds == pytest.approx(
        CURVE.fixed_seconds * replayed.passes
        + CURVE.seconds_per_token * (replayed.passes + replayed.drafted))


def test_table_compares_each_method_with_the_first() -> None:
    unchanged = list(range(2, 30))
    runs = {m: [replay(build_proposer(parse_method(m, ("greedy", "speculative")),
                                      prompt=PROMPT, original=unchanged, cost=CURVE),
                       unchanged, CURVE)] for m in ("greedy", "speculative")}
    assert runs["greedy"][0].passes == len(unchanged)
    assert runs["speculative"][0].passes == 1  # unchanged: one pass confirms it all
    rows = table(runs, "greedy")
    assert rows[2].startswith("| greedy | 1 | 28 | 0 |")
    assert rows[3].startswith("| speculative | 1 | 1 | 28 |")
