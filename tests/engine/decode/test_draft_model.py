"""Draft-model speculative decoding: exact for every K, and no hidden forward passes."""

from __future__ import annotations

import functools

import pytest
import torch

from engine.contract import TokenizerMismatchError
from engine.decode.loop import decode
from engine.decode.proposers import AdaptiveK, DraftModelProposer, check_same_tokenizer
from engine.decode.runner import ModelRunner
from engine.decode.stopping import StopTokens
from tests.helpers.reference import greedy_reference
from tests.helpers.tiny_models import chat_tokenizer, tiny_model, tiny_tokenizer

VOCAB = 400
PROMPT = [12, 40, 7, 301, 55]


@functools.cache
def target(arch: str) -> torch.nn.Module:
    return tiny_model(arch, seed=3, vocab_size=VOCAB, layers=3, hidden=96)


@functools.cache
def draft(arch: str) -> torch.nn.Module:
    # Smaller and differently seeded: it agrees with the target only sometimes.
    return tiny_model(arch, seed=4, vocab_size=VOCAB, layers=1, hidden=32)


def reference(arch: str, stop: StopTokens, max_new: int) -> list[int]:
    return greedy_reference(ModelRunner(target(arch)), PROMPT, stop, max_new).tokens


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 8, 50, "auto"])
def test_every_k_gives_the_targets_greedy_output(arch: str, k: int | str) -> None:
    for max_new in (60, 3):  # 3: K larger than the tokens left
        expected = reference(arch, StopTokens(), max_new)
        schedule = AdaptiveK() if k == "auto" else k
        proposer = DraftModelProposer(draft(arch), PROMPT, schedule)
        result = decode(ModelRunner(target(arch)), PROMPT, proposer, StopTokens(), max_new)
        assert result.tokens == expected
        assert result.stats.forward_passes == result.stats.verification_steps + 1


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("k", [2, 5, 8])
def test_eos_inside_a_draft_block_stops_at_the_right_token(arch: str, k: int) -> None:
    full = reference(arch, StopTokens(), 60)
    for stop_id in sorted(set(full[5:40]))[:4]:
        stop = StopTokens(frozenset({stop_id}))
        expected = reference(arch, stop, 60)
        # The draft is the target itself, so EOS is always proposed inside an accepted block.
        proposer = DraftModelProposer(target(arch), PROMPT, k)
        result = decode(ModelRunner(target(arch)), PROMPT, proposer, stop, 60)
        assert result.tokens == expected
        assert result.finish_reason == "stop"


@pytest.mark.parametrize("k", [1, 3, 4, 7])
def test_identical_draft_accepts_k_tokens_every_verification(k: int) -> None:
    max_new = 40
    model = target("llama")
    proposer = DraftModelProposer(model, PROMPT, k)
    result = decode(ModelRunner(model), PROMPT, proposer, StopTokens(), max_new)
    s = result.stats
    assert result.tokens == reference("llama", StopTokens(), max_new)
    # Prefill gives one token; each verification gives K accepted + the target's own token,
    # the last one as many as are still wanted.
    remaining, steps, accepted = max_new - 1, 0, 0
    while remaining > 0:
        accepted += min(k, remaining)
        remaining -= min(k, remaining) + 1
        steps += 1
    assert s.verification_steps == steps
    assert s.accepted_tokens == accepted
    assert s.forward_passes == s.verification_steps + 1
    # The draft runs K passes per block, minus the ones its cache already covered.
    assert s.draft_forward_passes <= k * s.verification_steps


def test_draft_cache_stays_in_sync_after_a_fully_accepted_block() -> None:
    model = target("llama")
    proposer = DraftModelProposer(model, PROMPT, 4)
    first = proposer.propose([9], 4)
    # Fully accepted: the target adds its own token; the draft must be fed both the last
    # draft token (never fed) and that token, in one pass.
    passes_before = proposer.forward_passes
    bonus = 17
    proposer.propose([9, *first, bonus], 4)
    assert proposer.runner.cached[: len(PROMPT) + 6] == PROMPT + [9, *first, bonus]
    assert proposer.forward_passes - passes_before == 4


def test_adaptive_k_grows_on_full_acceptance_and_shrinks_on_rejection() -> None:
    k = AdaptiveK(start=5)
    k.update(5, 5)
    assert k.value == 7
    k.update(7, 2)
    assert k.value == 6


def test_tokenizer_mismatch_is_a_clear_error() -> None:
    check_same_tokenizer(chat_tokenizer(), chat_tokenizer())
    with pytest.raises(TokenizerMismatchError, match="same family"):
        check_same_tokenizer(tiny_tokenizer(300), tiny_tokenizer(400))
