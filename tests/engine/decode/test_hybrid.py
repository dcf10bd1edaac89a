"""The hybrid proposer: the original drafts where the output follows it, a draft model where
it does not. Exact (tiny random models) and fewer target passes in new code (scripted)."""

from __future__ import annotations

import functools
import random

import pytest
import torch

from engine.contract import TokenizerMismatchError
from engine.decode.loop import decode
from engine.decode.methods import DraftModel, build_proposer, parse_method
from engine.decode.proposers import (
    AdaptiveK,
    DraftModelProposer,
    HybridProposer,
    OriginalCodeProposer,
)
from engine.decode.runner import ModelRunner
from engine.decode.stopping import StopTokens
from tests.helpers.reference import greedy_reference
from tests.helpers.scripted_edits import NEWLINE, PROMPT, STOP, VOCAB, flat, random_lines
from tests.helpers.scripted_model import FREE_TOKENS, ScriptedModel
from tests.helpers.tiny_models import chat_tokenizer, tiny_model, tiny_tokenizer

TINY_VOCAB = 400
TINY_PROMPT = [12, 40, 7, 301, 55]


@functools.cache
def target(arch: str) -> torch.nn.Module:
    return tiny_model(arch, seed=3, vocab_size=TINY_VOCAB, layers=3, hidden=96)


@functools.cache
def small(arch: str) -> torch.nn.Module:
    return tiny_model(arch, seed=4, vocab_size=TINY_VOCAB, layers=1, hidden=32)


def hybrid(original: list[int], drafter_model: torch.nn.Module, prompt: list[int],
           stop_ids: frozenset[int] = frozenset()) -> HybridProposer:
    return HybridProposer(OriginalCodeProposer(original),
                          DraftModelProposer(drafter_model, prompt, AdaptiveK(),
                                             stop_ids=stop_ids))


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("drafter", ["small", "target"])
def test_hybrid_output_equals_greedy(arch: str, drafter: str) -> None:
    max_new = 60
    expected = greedy_reference(ModelRunner(target(arch)), TINY_PROMPT, StopTokens(),
                                max_new).tokens
    rng = random.Random(arch + drafter)
    for _ in range(6):
        original = list(expected)
        i = rng.randrange(len(original))
        j = min(len(original), i + rng.randrange(0, 20))
        original[i:j] = [rng.randrange(TINY_VOCAB) for _ in range(rng.randrange(0, 6))]
        model = small(arch) if drafter == "small" else target(arch)
        proposer = hybrid(original, model, TINY_PROMPT)
        result = decode(ModelRunner(target(arch)), TINY_PROMPT, proposer, StopTokens(),
                             max_new)
        assert result.tokens == expected
        assert result.stats.draft_forward_passes == proposer.forward_passes


def scripted_run(original: list[int], output: list[int], with_drafter: bool
                 ) -> tuple[int, HybridProposer | OriginalCodeProposer]:
    script = output + [STOP]
    model = ScriptedModel(len(PROMPT), script, VOCAB)
    original_proposer = OriginalCodeProposer(original + [STOP])
    proposer: HybridProposer | OriginalCodeProposer = original_proposer
    if with_drafter:
        # The scripted model's greedy output depends only on the position: as a drafter it
        # proposes exactly what the target will write, as a well-matched small model would.
        drafter = DraftModelProposer(ScriptedModel(len(PROMPT), script, VOCAB), PROMPT,
                                     AdaptiveK(), stop_ids=frozenset({STOP}))
        proposer = HybridProposer(original_proposer, drafter)
    result = decode(ModelRunner(model), PROMPT, proposer, StopTokens(frozenset({STOP})),
                         max_new_tokens=len(script) + 10)
    assert result.tokens == output
    assert result.stats.forward_passes == model.calls
    return result.stats.forward_passes, proposer


@pytest.mark.parametrize("seed", range(8))
def test_new_code_takes_far_fewer_passes_with_a_drafter(seed: int) -> None:
    rng = random.Random(seed)
    lines = random_lines(rng, 30)
    at = rng.randint(1, 29)
    # Three new lines of tokens the original never uses: nothing to look up there.
    inserted = [t for _ in range(3) for t in [*(rng.randrange(40, 60) for _ in range(11)),
                                              NEWLINE]]
    output = flat(lines[:at]) + inserted + flat(lines[at:])
    alone, _ = scripted_run(flat(lines), output, with_drafter=False)
    both, proposer = scripted_run(flat(lines), output, with_drafter=True)
    assert isinstance(proposer, HybridProposer) and proposer.stand_in_proposals > 0
    assert alone >= len(inserted) - 4  # one new token per pass, give or take chance matches
    assert both <= alone // 2
    # The original took over again after the insertion: the unchanged tail is one draft.
    assert proposer.original.covered == 1.0


def test_unchanged_code_never_asks_the_drafter() -> None:
    lines = random_lines(random.Random(1), 40)
    passes, proposer = scripted_run(flat(lines), flat(lines), with_drafter=True)
    assert passes == 1 and isinstance(proposer, HybridProposer)
    assert proposer.stand_in_proposals == 0 and proposer.forward_passes == 0


def _drafter(tokenizer: object) -> DraftModel:
    model = tiny_model("llama", vocab_size=len(chat_tokenizer()), layers=1, hidden=32)
    return DraftModel(model, tokenizer, chat_tokenizer())


def test_factory_makes_speculative_hybrid_given_a_draft_model() -> None:
    d = _drafter(chat_tokenizer())
    proposer = build_proposer(parse_method("speculative"), prompt=[5, 6], original=[7, 8],
                              stop_ids=frozenset({0}), draft=d, cost=FREE_TOKENS)
    assert isinstance(proposer, HybridProposer)
    assert proposer.original.policy is not None
    assert proposer.drafter.stop_ids == frozenset({0}) and isinstance(proposer.drafter.k,
                                                                      AdaptiveK)
    capped = build_proposer(parse_method("speculative:4"), prompt=[5], original=[7], draft=d)
    assert isinstance(capped, HybridProposer) and capped.original.policy is None
    with pytest.raises(TokenizerMismatchError):
        build_proposer(parse_method("speculative"), prompt=[5],
                       draft=_drafter(tiny_tokenizer(300)))
