"""Speculative output equals greedy output, token for token, in every way the engine runs a
model that it calls exact: transformers' float32 (plain and with packed linear layers) and
the native decoder on a GGUF's own blocks and on dense float32 and bfloat16 copies.

Models of several architectures with random weights; the "original code" is the model's own
greedy output with edits applied (insertions, deletions, replacements, several hunks,
repeated lines, empty, longer or shorter), which is exactly how a real rewrite looks to
the verifier: mostly the same tokens, with a few places where the model writes its own.
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import StaticCache

from engine.decode.draft_length import WEAK_PRIOR, DraftLengthPolicy, PassCostCurve
from engine.decode.loop import decode
from engine.decode.proposers import (
    LookupFallbackProposer,
    OriginalCodeProposer,
    OriginalDraftSettings,
    PromptLookupProposer,
)
from engine.decode.runner import ModelRunner
from engine.decode.stopping import StopTokens
from engine.model.gguf.decoder import NativeDecoder
from engine.model.gguf.reader import GGUFFile
from engine.model.packed_linear import pack_linears
from engine.model.row_attention import use_row_attention
from tests.helpers.reference import greedy_reference
from tests.helpers.tiny_gguf import write_tiny_gguf
from tests.helpers.tiny_models import tiny_model

# "+packed": the Linear layers packed for oneDNN, as load_model runs them on the CPU;
# "+rows": row-wise attention (engine/model/row_attention.py), as load_model runs them on the
# CPU; "+bf16": in bfloat16.
# "native:ARCH:TYPE:STORAGE": the native decoder on a tiny GGUF whose matrices are TYPE,
# holding them as STORAGE (gguf: the file's own blocks).
TRANSFORMERS = ["gpt2", "llama", "qwen2", "qwen2+packed", "qwen2+packed+rows", "llama+rows+bf16"]
NATIVE = ["native:qwen2:Q8_0:gguf", "native:llama:Q4_K:gguf", "native:qwen2:Q6_K:gguf",
          "native:qwen2:Q5_0:bfloat16", "native:llama:F32:float32"]
ARCHS = TRANSFORMERS + NATIVE
VOCAB = 400
MAX_NEW = 80
# Where transformers' models run: the CPU, or a GPU when a device check asks for one
# (engine/bench/device/cuda_check.sh); the native decoder is CPU-only.
DEVICE = os.environ.get("SPECEDIT_TEST_DEVICE", "cpu")


@functools.cache
def model(arch: str) -> torch.nn.Module | NativeDecoder:
    if arch.startswith("native:"):
        _, base, matrix_type, storage = arch.split(":")
        path = Path(tempfile.mkdtemp()) / f"{base}-{matrix_type}.gguf"
        return NativeDecoder(GGUFFile(write_tiny_gguf(path, base, matrix_type=matrix_type,
                                                      seed=1)), storage)
    base, *variants = arch.split("+")
    built = tiny_model(base, seed=1, vocab_size=VOCAB).to(DEVICE)
    if "bf16" in variants:
        built = built.to(torch.bfloat16)
    if "packed" in variants and DEVICE == "cpu":
        assert pack_linears(built) > 0
    if "rows" in variants and DEVICE == "cpu":
        assert use_row_attention(built)
    return built


@functools.cache
def greedy(arch: str, prompt: tuple[int, ...], stop_id: int | None) -> tuple[int, ...]:
    stop = StopTokens(frozenset() if stop_id is None else frozenset({stop_id}))
    return tuple(greedy_reference(ModelRunner(model(arch)), prompt, stop, MAX_NEW).tokens)


def test_greedy_reference_matches_transformers_generate() -> None:
    for arch in TRANSFORMERS:
        prompt = [5, 17, 42, 99, 3]
        ours = greedy(arch, tuple(prompt), None)
        theirs = model(arch).generate(torch.tensor([prompt], device=DEVICE),
                                      max_new_tokens=MAX_NEW,
                                      do_sample=False, eos_token_id=None, pad_token_id=0)
        assert list(ours) == theirs[0, len(prompt):].tolist()


@st.composite
def edited(draw: st.DrawFn, tokens: list[int]) -> list[int]:
    """The output with edits applied: what the original code looked like before the rewrite."""
    kind = draw(st.sampled_from(["unchanged", "insert", "delete", "replace", "hunks",
                                 "repeat", "empty", "longer", "shorter", "noise"]))
    out = list(tokens)
    token = st.integers(0, VOCAB - 1)
    if kind == "empty":
        return []
    if kind == "noise":
        return draw(st.lists(token, max_size=60))
    if kind == "longer":
        return out + draw(st.lists(token, min_size=1, max_size=30))
    if kind == "shorter":
        return out[: draw(st.integers(0, len(out)))]
    if kind == "repeat" and out:
        a = draw(st.integers(0, len(out) - 1))
        b = draw(st.integers(a + 1, min(len(out), a + 15)))
        at = draw(st.integers(0, len(out)))
        return out[:at] + out[a:b] * draw(st.integers(1, 3)) + out[at:]
    hunks = 1 if kind != "hunks" else draw(st.integers(2, 4))
    for _ in range(hunks if kind != "unchanged" else 0):
        i = draw(st.integers(0, len(out)))
        j = min(len(out), i + draw(st.integers(0, 8)))
        new = draw(st.lists(token, max_size=8))
        if kind == "insert":
            out[i:i] = new or [1]
        elif kind == "delete":
            del out[i:j]
        else:
            out[i:j] = new
    return out


draft_settings = st.builds(
    OriginalDraftSettings,
    first_draft=st.one_of(st.none(), st.integers(1, 64)),
    max_draft=st.one_of(st.none(), st.integers(1, 64)),
    weak_draft=st.integers(1, 16),
    strong_match=st.integers(1, 6),
    max_match=st.integers(1, 12),
)


@pytest.mark.parametrize("arch", ARCHS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_speculative_equals_greedy(arch: str, data: st.DataObject) -> None:
    prompt = tuple(data.draw(st.lists(st.integers(2, VOCAB - 1), min_size=1, max_size=12)))
    reference = greedy(arch, prompt, None)
    # Sometimes stop at a token the output contains, so a stop lands inside a draft block.
    stop_id = data.draw(st.one_of(st.none(), st.sampled_from(reference)))
    expected = greedy(arch, prompt, stop_id)
    original = data.draw(edited(list(reference)))
    proposer = OriginalCodeProposer(original, data.draw(draft_settings))
    stop = StopTokens(frozenset() if stop_id is None else frozenset({stop_id}))
    max_new = data.draw(st.integers(1, MAX_NEW))
    result = decode(ModelRunner(model(arch)), prompt, proposer, stop, max_new)
    assert tuple(result.tokens) == expected[:max_new]
    # Never more passes than greedy (one token per pass is the floor of progress).
    assert result.stats.forward_passes <= min(len(expected), max_new) + 1


@pytest.mark.parametrize("arch", ARCHS)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_speculative_with_lookup_fallback_equals_greedy(arch: str, data: st.DataObject) -> None:
    """What `speculative` runs: the original drafts, n-gram lookup where it has no match,
    with and without drafts sized by a pass-cost curve."""
    prompt = tuple(data.draw(st.lists(st.integers(2, VOCAB - 1), min_size=1, max_size=12)))
    expected = greedy(arch, prompt, None)
    original = data.draw(edited(list(expected)))
    curve = data.draw(st.one_of(st.none(), st.builds(PassCostCurve, st.floats(0.1, 2.0),
                                                      st.floats(0.0, 1.0))))
    policy = DraftLengthPolicy(curve) if curve is not None else None
    lookup_policy = DraftLengthPolicy(curve, WEAK_PRIOR, None) if curve is not None else None
    proposer = LookupFallbackProposer(
        OriginalCodeProposer(original, data.draw(draft_settings), policy),
        PromptLookupProposer(prompt, ngram_max=data.draw(st.integers(1, 4)),
                             num_tokens=data.draw(st.integers(1, 16)), policy=lookup_policy))
    max_new = data.draw(st.integers(1, MAX_NEW))
    result = decode(ModelRunner(model(arch)), prompt, proposer, StopTokens(), max_new)
    assert tuple(result.tokens) == expected[:max_new]
    assert result.stats.forward_passes <= min(len(expected), max_new) + 1


@pytest.mark.parametrize("arch", ["llama", "qwen2+packed", "qwen2+packed+rows"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_speculative_on_a_static_cache_equals_greedy(arch: str, data: st.DataObject) -> None:
    """A preallocated StaticCache (what a compiled forward needs): rejected drafts only move
    its length back, the stale positions behind it are overwritten, never attended to. One
    runner serves several requests, as the server's does."""
    runner = ModelRunner(model(arch), StaticCache(config=model(arch).config, max_cache_len=256))
    for _ in range(2):
        prompt = tuple(data.draw(st.lists(st.integers(2, VOCAB - 1), min_size=1, max_size=12)))
        expected = greedy(arch, prompt, None)
        proposer = OriginalCodeProposer(data.draw(edited(list(expected))),
                                        data.draw(draft_settings))
        if data.draw(st.booleans()):
            runner.reset()  # else the next prompt keeps what it shares with the last pass
        result = decode(runner, prompt, proposer, StopTokens(), MAX_NEW)
        assert tuple(result.tokens) == expected
        assert int(runner.cache.get_seq_length()) == len(runner.cached)


@pytest.mark.parametrize("arch", ARCHS)
def test_prompt_lookup_proposer_equals_greedy(arch: str) -> None:
    prompt = (7, 8, 9, 7, 8, 9, 7, 8)
    result = decode(ModelRunner(model(arch)), prompt, PromptLookupProposer(prompt),
                         StopTokens(), MAX_NEW)
    assert tuple(result.tokens) == greedy(arch, prompt, None)


def test_cache_is_cropped_to_what_was_accepted() -> None:
    runner = ModelRunner(model("llama"))
    prompt = [3, 4, 5]
    first = runner.predict(prompt, [10, 11, 12])
    assert runner.cache.get_seq_length() == 6
    # Keep one accepted draft token: the cache drops the rejected ones before the next pass.
    runner.predict(prompt + [10, first[1]], [])
    assert runner.cache.get_seq_length() == 5
    assert runner.cached == prompt + [10, first[1]]


def test_runner_passes_the_cache_under_the_name_the_model_takes() -> None:
    """transformers 5.2x renamed `past_key_values` to `cache` (the old name warns, and goes in
    5.40); the runner must use whichever the installed release takes."""
    for arch in ("gpt2", "llama", "qwen2"):
        runner = ModelRunner(model(arch))
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            runner.predict([3, 4, 5], [6, 7])
            runner.predict([3, 4, 5, 6], [9])
        assert runner.cache.get_seq_length() == 5
