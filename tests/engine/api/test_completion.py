"""The engine under `specedit api`: a chat completion with a prediction as its draft.

Greedy (temperature 0) must equal the independent greedy reference token for token, with
any prediction; sampling must be distributed exactly as plain sampling (a chi-square test
over many seeds, with a broken sampler as the control that shows the test can fail).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from scipy.stats import chi2_contingency

import engine
from engine.decode.loop import decode
from engine.decode.proposers import NoProposer, OriginalCodeProposer
from engine.decode.runner import ModelRunner
from engine.decode.sampling import SampledAcceptance, Sampler
from engine.decode.stopping import StopTokens, StreamedText, TextStop
from engine.rewriting.completion import (
    CompletionSettings,
    chat_prompt,
    complete,
    count_prediction_tokens,
    prediction_ids,
)
from engine.rewriting.prompt import build_prompt, stop_token_ids
from tests.helpers.reference import greedy_reference

MESSAGES = [{"role": "user", "content": "def add(a, b):\n    return a + b\n"}]


@pytest.fixture(scope="module")
def loaded(tiny_chat_model_dir: Path) -> engine.LoadedModel:
    return engine.load_model(str(tiny_chat_model_dir), "cpu", "float32")


def greedy_tokens(loaded: engine.LoadedModel, ids: Sequence[int], n: int,
                  stop_ids: frozenset[int] = frozenset()) -> list[int]:
    runner = ModelRunner(loaded.model)
    return greedy_reference(runner, ids, StopTokens(stop_ids), n).tokens


# -- greedy --------------------------------------------------------------------------------


@pytest.mark.parametrize("prediction", ["", "def add(a, b):\n    return a + b\n",
                                        "import os\nimport sys\n", "x"])
def test_greedy_equals_the_reference_whatever_the_prediction(loaded, prediction: str) -> None:
    prompt = chat_prompt(loaded.tokenizer, MESSAGES)
    stops = stop_token_ids(loaded.tokenizer, loaded.model)
    expected = greedy_reference(ModelRunner(loaded.model), prompt.ids, StopTokens(stops), 40)
    predicted = prediction_ids(loaded.tokenizer, prompt, prediction)
    result = complete(loaded, ModelRunner(loaded.model), prompt, predicted,
                      CompletionSettings(max_new_tokens=40, temperature=0))
    assert result.token_ids == expected.tokens
    assert result.finish_reason == expected.finish_reason
    assert result.text == loaded.tokenizer.decode(expected.tokens, skip_special_tokens=True)


def test_a_prediction_equal_to_the_answer_is_accepted_in_one_pass(loaded) -> None:
    prompt = chat_prompt(loaded.tokenizer, MESSAGES)
    answer = greedy_tokens(loaded, prompt.ids, 12)
    extra = [answer[0], answer[0]]  # predicted past the end: rejected
    result = complete(loaded, ModelRunner(loaded.model), prompt, answer + extra,
                      CompletionSettings(max_new_tokens=12, temperature=0, ignore_eos=True))
    assert result.token_ids == answer
    assert result.stats.forward_passes == 1
    assert (result.accepted_prediction_tokens, result.rejected_prediction_tokens) == (12, 2)


def test_prediction_tokens_are_counted_as_openai_defines_them() -> None:
    # accepted: prediction tokens that appear in the completion (in order, once each)
    assert count_prediction_tokens([1, 2, 3, 4], [1, 9, 3, 4]) == (3, 1)
    assert count_prediction_tokens([1, 2, 3], [1, 2, 3, 7, 8]) == (3, 0)
    assert count_prediction_tokens([5, 6], [1, 2]) == (0, 2)
    assert count_prediction_tokens([], [1, 2]) == (0, 0)
    assert count_prediction_tokens([1, 1, 1], [1]) == (1, 2)


def test_the_rewrite_prompt_sent_as_messages_gives_the_same_prompt(loaded) -> None:
    from engine.rewriting.prompt import rewrite_messages  # the rewrite prompt's parts

    code, instruction = "def add(a, b):\n    return a + b\n", "Add type hints"
    rewrite_prompt = build_prompt(loaded.tokenizer, code, instruction, language="python")
    wording = rewrite_messages(code, instruction, language="python")  # the default format
    messages = [*wording.chat(), {"role": "assistant", "content": wording.primer}]
    prompt = chat_prompt(loaded.tokenizer, messages, continue_final_message=True)
    assert prompt.text == rewrite_prompt.text
    assert prompt.ids == rewrite_prompt.prompt_ids
    assert prediction_ids(loaded.tokenizer, prompt, wording.answer) == rewrite_prompt.draft_ids


# -- stop strings and streaming --------------------------------------------------------------


def test_stop_strings_cut_the_text_and_streamed_pieces_add_up(loaded) -> None:
    tok = loaded.tokenizer
    tokens = tok("def add(a, b):\n    return a + b\n", add_special_tokens=False)["input_ids"]
    stop = TextStop(tok, StopTokens(frozenset()), ("return",))
    end = stop.first_stop(tokens, 0)
    assert end is not None and "return" in tok.decode(tokens[:end])
    assert "return" not in tok.decode(tokens[:end - 1])
    streamed = StreamedText(tok, ("return",))
    pieces = [streamed.delta(tokens[:n]) for n in range(1, end + 1)]
    pieces.append(streamed.final(tokens[:end]))
    assert "".join(pieces) == "def add(a, b):\n    "


def test_completion_with_a_stop_string_ends_before_it(loaded) -> None:
    prompt = chat_prompt(loaded.tokenizer, MESSAGES)
    full = complete(loaded, ModelRunner(loaded.model), prompt, [],
                    CompletionSettings(max_new_tokens=30, temperature=0, ignore_eos=True))
    word = full.text[5:7]
    assert word.strip() and "\ufffd" not in word, "pick another slice of the greedy text"
    pieces: list[str] = []
    cut = complete(loaded, ModelRunner(loaded.model), prompt, [],
                   CompletionSettings(max_new_tokens=30, temperature=0, ignore_eos=True,
                                      stop=(word,)), on_text=pieces.append)
    assert cut.text == full.text[:full.text.index(word)]
    assert cut.finish_reason == "stop"
    assert "".join(pieces) == cut.text


# -- sampling ------------------------------------------------------------------------------


class MemoRunner:
    """The real model's logits, computed once per prefix and then reused.

    Sampling thousands of seeds would otherwise run thousands of forward passes; the rows
    are the model's own, so both loops sample from exactly the same distributions.
    """

    def __init__(self, runner: ModelRunner) -> None:
        self.runner = runner
        self.rows: dict[tuple[int, ...], torch.Tensor] = {}

    @property
    def forward_passes(self) -> int:
        return self.runner.forward_passes

    @property
    def tokens_fed(self) -> int:
        return self.runner.tokens_fed

    def logits(self, sequence: Sequence[int], draft: Sequence[int] = ()) -> torch.Tensor:
        keys = [tuple(sequence) + tuple(draft[:i]) for i in range(len(draft) + 1)]
        if any(k not in self.rows for k in keys):
            for key, row in zip(keys, self.runner.logits(sequence, draft), strict=True):
                self.rows.setdefault(key, row.clone())
        return torch.stack([self.rows[k] for k in keys])


class AlwaysAccept(Sampler):
    """A broken sampler that keeps every predicted token: the control for the test's power."""

    def uniform(self) -> float:
        return 0.0


def joint_counts(runner: MemoRunner, prompt: list[int], prediction: list[int] | None,
                 sampler_type: type[Sampler], temperature: float, top_p: float,
                 seeds: range, n: int = 2) -> Counter[tuple[int, ...]]:
    counts: Counter[tuple[int, ...]] = Counter()
    for seed in seeds:
        proposer = OriginalCodeProposer(prediction) if prediction else NoProposer()
        sampler = sampler_type(temperature, top_p, seed)
        result = decode(runner, prompt, proposer, StopTokens(frozenset()), n,
                        rule=SampledAcceptance(sampler))
        counts[tuple(result.tokens)] += 1
    return counts


def same_distribution_p(a: Counter, b: Counter, min_count: int = 10) -> float:
    """Chi-square two-sample test over outcomes; rare outcomes pooled into one cell."""
    common = [k for k in a.keys() | b.keys() if a[k] + b[k] >= min_count]
    table = [[a[k] for k in common] + [sum(a.values()) - sum(a[k] for k in common)],
             [b[k] for k in common] + [sum(b.values()) - sum(b[k] for k in common)]]
    if table[0][-1] + table[1][-1] == 0:
        table = [row[:-1] for row in table]
    return float(chi2_contingency(table).pvalue)


@pytest.mark.parametrize(("temperature", "top_p", "predict"), [
    (1.0, 1.0, "greedy"),  # a likely prediction: mostly kept, sometimes rejected
    (1.5, 0.8, "greedy"),  # top-p shapes the target before accept/reject
    (1.0, 1.0, "unlikely"),  # a poor prediction: mostly rejected and resampled
])
def test_speculative_sampling_is_distributed_as_plain_sampling(
        loaded, temperature: float, top_p: float, predict: str) -> None:
    runner = MemoRunner(ModelRunner(loaded.model))
    prompt = chat_prompt(loaded.tokenizer, MESSAGES).ids
    greedy = greedy_tokens(loaded, prompt, 2)
    prediction = greedy if predict == "greedy" else [343, 5]
    seeds = range(3000)
    plain = joint_counts(runner, prompt, None, Sampler, temperature, top_p, seeds)
    spec = joint_counts(runner, prompt, prediction, Sampler, temperature, top_p,
                        range(10_000, 13_000))
    assert same_distribution_p(plain, spec) > 1e-3, (plain.most_common(5), spec.most_common(5))
    if predict == "greedy":
        broken = joint_counts(runner, prompt, prediction, AlwaysAccept, temperature, top_p,
                              range(20_000, 21_000))
        assert same_distribution_p(plain, broken) < 1e-6


def test_top_p_keeps_the_smallest_head_that_reaches_it() -> None:
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    p = Sampler(1.0, top_p=0.75, seed=0).distribution(logits)
    assert torch.allclose(p, torch.tensor([0.625, 0.375, 0.0, 0.0], dtype=torch.float64))
    p = Sampler(1.0, top_p=0.1, seed=0).distribution(logits)
    assert p.tolist() == [1.0, 0.0, 0.0, 0.0]  # the most likely token always stays


def test_a_temperature_just_above_0_is_greedy_not_nan() -> None:
    logits = torch.tensor([2.0, 9.0, -3.0, 8.5])
    for temperature in (1e-320, 1e-300, 1e-6):
        p = Sampler(temperature, seed=0).distribution(logits)
        assert p.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_a_seed_makes_a_sampled_completion_reproducible(loaded) -> None:
    prompt = chat_prompt(loaded.tokenizer, MESSAGES)
    predicted = greedy_tokens(loaded, prompt.ids, 8)

    def sample(seed: int) -> list[int]:
        return complete(loaded, ModelRunner(loaded.model), prompt, predicted,
                        CompletionSettings(max_new_tokens=8, temperature=1.5, seed=seed,
                                           ignore_eos=True)).token_ids

    assert sample(7) == sample(7)
    assert len({tuple(sample(seed)) for seed in range(6)}) > 1
