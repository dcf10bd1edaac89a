"""Cost-aware drafting: the lengths chosen for declared pass-cost curves, and what they cost.

No clock anywhere: a run's cost is modelled as the sum of t(tokens fed) over its passes for
a declared curve, which the scripted model's per-pass token counts give exactly.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.decode.draft_length import (
    AcceptancePrior,
    DraftLengthPolicy,
    PassCostCurve,
    expected_tokens,
)
from engine.decode.loop import decode
from engine.decode.methods import build_proposer, parse_method
from engine.decode.proposers import LookupFallbackProposer
from engine.decode.runner import ModelRunner
from engine.decode.stopping import StopTokens
from tests.helpers.scripted_edits import (
    NEWLINE,
    PROMPT,
    STOP,
    VOCAB,
    apply_hunks,
    flat,
    random_lines,
)
from tests.helpers.scripted_model import FREE_TOKENS, ScriptedModel

# bf16 emulated on an AVX2 CPU: a verified token costs half a one-token pass.
BF16_CPU = PassCostCurve(1.0, 0.5)
FLOAT32_CPU = PassCostCurve(1.0, 0.15)
GPU = PassCostCurve(1.0, 0.002)


class CountingScriptedModel(ScriptedModel):
    """A ScriptedModel that records how many tokens each pass fed."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fed: list[int] = []

    def forward(self, input_ids, **kwargs):  # noqa: ANN001, ANN201 - the model's signature
        self.fed.append(int(input_ids.shape[1]))
        return super().forward(input_ids, **kwargs)


def run(original: list[int], output: list[int], curve: PassCostCurve | None,
        price: PassCostCurve | None = None) -> tuple[int, float, int]:
    """Speculative edits drafting by `curve` (None: whole remainder) where greedy writes
    `output`: (passes, modelled seconds under `price` or `curve`, first draft's length)."""
    script = output + [STOP]
    model = CountingScriptedModel(len(PROMPT), script, VOCAB)
    proposer = build_proposer(parse_method("speculative"), prompt=PROMPT,
                              original=original + [STOP], cost=curve)
    result = decode(ModelRunner(model), PROMPT, proposer, StopTokens(frozenset({STOP})),
                         max_new_tokens=len(script) + 10)
    assert result.tokens == output  # exact whatever the drafts
    assert result.stats.forward_passes == len(model.fed)
    priced = price or curve or FREE_TOKENS
    return (result.stats.forward_passes, sum(priced.seconds(n) for n in model.fed),
            model.fed[0] - len(PROMPT))


def greedy_seconds(output: list[int], curve: PassCostCurve) -> float:
    # Prefill of the prompt, then one pass per token (the last fed with the stop token).
    return curve.seconds(len(PROMPT)) + len(output) * curve.seconds(1)


def test_expected_tokens_counts_the_targets_own_token() -> None:
    assert expected_tokens(0, 0.7) == 1.0
    assert expected_tokens(2, 0.5) == pytest.approx(1 + 0.5 + 0.25)
    assert expected_tokens(5, 1.0) == 6.0


@pytest.mark.parametrize("rejections", [0, 1, 5, 50])
def test_free_tokens_draft_the_whole_remainder(rejections: int) -> None:
    policy = DraftLengthPolicy(FREE_TOKENS)
    policy.rejections = rejections
    assert policy.choose(2000, first=True) == 2000
    assert policy.choose(2000) == 2000
    assert policy.weak.choose(7) == 7


def test_nearly_free_tokens_draft_the_whole_remainder() -> None:
    # 100 tokens on the GPU curve add a fifth of a pass: not worth a risked extra pass.
    assert DraftLengthPolicy(GPU).choose(100, first=True) == 100
    assert DraftLengthPolicy(GPU).choose(100) == 100
    assert DraftLengthPolicy(GPU).choose(2000, first=True) >= 200


def test_costly_tokens_draft_short_and_shorter_after_rejections() -> None:
    policy = DraftLengthPolicy(BF16_CPU)
    first = policy.choose(215, first=True)
    assert 4 <= first <= 32  # the measured failure: 215 tokens rejected at the first one
    lengths = []
    for _ in range(4):
        lengths.append(policy.choose(215))
        policy.record(10, 0)
    assert lengths == sorted(lengths, reverse=True) and lengths[-1] < lengths[0]
    assert policy.acceptance < 0.75
    # Long accepted runs restore trust, and longer drafts.
    for _ in range(60):
        policy.record(10, 10)
    assert policy.choose(215) > lengths[0]


def test_drafts_are_longer_where_tokens_are_cheaper() -> None:
    chosen = [DraftLengthPolicy(curve).choose(1000, first=True)
              for curve in (BF16_CPU, FLOAT32_CPU, GPU)]
    assert chosen == sorted(chosen) and chosen[0] < chosen[-1]


def test_weak_drafts_have_their_own_acceptance() -> None:
    policy = DraftLengthPolicy(BF16_CPU)
    before = policy.choose(200)
    for _ in range(5):
        policy.weak.record(4, 0)
    assert policy.choose(200) == before  # trusted drafts are not judged by weak ones
    assert policy.weak.choose(8) == 0  # chance matches that keep failing: not worth a token
    assert policy.weak.acceptance < 0.2
    assert AcceptancePrior().tokens / (AcceptancePrior().tokens
                                       + AcceptancePrior().rejections) == pytest.approx(0.99)


def test_speculative_n_is_a_fixed_cap_and_plain_speculative_uses_the_curve() -> None:
    capped = build_proposer(parse_method("speculative:8"), prompt=PROMPT, original=[1] * 50,
                            cost=BF16_CPU)
    plain = build_proposer(parse_method("speculative"), prompt=PROMPT, original=[1] * 50,
                           cost=BF16_CPU)
    assert isinstance(capped, LookupFallbackProposer) and capped.original.policy is None
    assert isinstance(plain, LookupFallbackProposer)
    policy = plain.original.policy
    assert policy is not None and plain.lookup.policy is not None
    assert len(capped.propose([], 1000)) == 8
    assert len(plain.propose([], 1000)) == policy.choose(50, first=True)


def test_a_first_token_rejection_wastes_little_where_tokens_cost() -> None:
    rng = random.Random(3)
    region = flat(random_lines(rng, 40))[:215]
    output = [45, *region]  # the model writes a new first token, then keeps everything
    for curve in (BF16_CPU, FLOAT32_CPU):
        passes, seconds, first = run(region, output, curve)
        _, whole_seconds, whole_first = run(region, output, None, price=curve)
        assert whole_first == len(region) + 1 and first <= 64
        assert seconds < whole_seconds and seconds < greedy_seconds(output, curve)
        assert passes <= len(output) // 4


@pytest.mark.parametrize("curve", [BF16_CPU, FLOAT32_CPU, GPU], ids=["bf16", "fp32", "gpu"])
def test_edits_cost_less_than_greedy_on_every_curve(curve: PassCostCurve) -> None:

    for seed in range(25):
        rng = random.Random(seed)
        lines = random_lines(rng, rng.randint(10, 60))
        output, _ = apply_hunks(rng, lines, rng.randint(1, 4))
        _, seconds, _ = run(flat(lines), output, curve)
        assert seconds < greedy_seconds(output, curve), seed


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), m=st.integers(1, 30), count=st.integers(1, 80))
def test_one_pass_guarantees_hold_where_tokens_are_free(seed: int, m: int, count: int) -> None:
    rng = random.Random(seed)
    lines = random_lines(rng, count)
    at = rng.randint(0, count)
    inserted = [rng.randrange(2, 60) for _ in range(m - 1)] + [NEWLINE]
    original = flat(lines)
    assert run(original, original, FREE_TOKENS)[0] == 1
    passes, _, _ = run(original, flat(lines[:at]) + inserted + flat(lines[at:]), FREE_TOKENS)
    assert passes <= m + 4
