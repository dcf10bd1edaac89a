"""The rewrite API end to end on tiny models: prompt, draft, fence, stop, methods agree."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import engine
from engine.bench.hf_prompt_lookup import rewrite_with_hf_prompt_lookup
from engine.rewriting.prompt import answer_text, build_prompt
from tests.helpers.scripted_model import ScriptedModel
from tests.helpers.tiny_models import chat_tokenizer, tiny_tokenizer

CODE = "def add(a, b):\n    return a + b\n\n\nclass Point:\n    pass\n"


@pytest.fixture(scope="module")
def chat_model(tiny_chat_model_dir: Path) -> engine.LoadedModel:
    return engine.load_model(str(tiny_chat_model_dir), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def base_model(tiny_base_model_dir: Path) -> engine.LoadedModel:
    return engine.load_model(str(tiny_base_model_dir), device="cpu", dtype="float32")


def test_chat_prompt_primes_the_answer_with_the_fence_and_drafts_the_original() -> None:
    tok = chat_tokenizer()
    p = build_prompt(tok, CODE, "add docstrings", language="python", context_before="import os\n")
    assert p.text.endswith("<|im_start|>assistant\n```python\n")
    assert "add docstrings" in p.text and "import os" in p.text
    assert tok.decode(p.draft_ids) == CODE + "```"
    assert tok.decode(p.prompt_ids) == p.text


def test_base_model_prompt_uses_the_plain_template() -> None:
    p = build_prompt(tiny_tokenizer(), "x = 1", "rename x to y", language="python")
    assert "## Instruction:\nrename x to y" in p.text  # the default format's plain form
    assert p.text.endswith("## Code After:\n```python\n")
    # A region without a trailing newline is drafted with one before the fence.
    assert tiny_tokenizer().decode(p.draft_ids) == "x = 1\n```"


@pytest.mark.parametrize(("decoded", "original", "expected"), [
    ("a\nb\n```", "a\nb\n", "a\nb\n"),
    ("a\nb\n```", "a\nb", "a\nb"),
    ("```", "a\n", ""),
    ("a\n```\ntrailing chatter", "a\n", "a\n"),
    ("x = '```'\n```", "x\n", "x = '```'\n"),  # a fence mid-line is code, not the end
    ("no fence at all\n", "a\n", "no fence at all\n"),
])
def test_answer_text_cuts_at_the_closing_fence(decoded: str, original: str,
                                                expected: str) -> None:
    assert answer_text(decoded, original) == expected


def test_fence_inside_an_accepted_block_stops_at_its_token() -> None:
    tok = chat_tokenizer()
    p = build_prompt(tok, CODE, "x")
    ids = tok("a = 1\n```\nmore = 2\n", add_special_tokens=False)["input_ids"]
    end = p.stop.first_stop(ids, 0)
    assert end is not None
    assert tok.decode(ids[:end]).endswith("```")
    assert "\n```" not in tok.decode(ids[: end - 1])


@pytest.mark.parametrize("fixture", ["chat_model", "base_model"])
def test_all_methods_give_greedys_tokens(fixture: str, request: pytest.FixtureRequest) -> None:
    loaded = request.getfixturevalue(fixture)
    results = {m: engine.rewrite(loaded, CODE, "add docstrings", language="python", method=m,
                                 max_new_tokens=120, draft=loaded)
               for m in ("greedy", "speculative", "speculative:3", "prompt-lookup",
                         "draft-model", "draft-model:2")}
    # transformers' own prompt lookup, the benchmark's baseline, on the same prompt.
    results["hf-prompt-lookup"] = rewrite_with_hf_prompt_lookup(
        loaded, CODE, "add docstrings", language="python", max_new_tokens=120)
    greedy = results["greedy"]
    for method, result in results.items():
        assert result.output_ids == greedy.output_ids, method
        assert result.text == greedy.text, method
    assert greedy.stats.forward_passes == greedy.stats.output_tokens + (
        1 if greedy.finish_reason == "stop" else 0)


def test_progress_is_reported_after_every_pass(chat_model: engine.LoadedModel) -> None:
    seen: list[engine.Progress] = []
    result = engine.rewrite(chat_model, CODE, "x", method="greedy", max_new_tokens=30,
                            on_progress=seen.append)
    # Every pass but a final stopping one reports; token counts only grow.
    assert len(seen) >= result.stats.forward_passes - 1
    assert [s.output_tokens for s in seen] == sorted(s.output_tokens for s in seen)


def test_cancel_stops_within_one_pass_and_returns_nothing(chat_model: engine.LoadedModel) -> None:
    passes: list[int] = []

    def stop() -> bool:
        return len(passes) >= 3

    with pytest.raises(engine.RewriteCancelled):
        engine.rewrite(chat_model, CODE, "x", method="speculative", max_new_tokens=200,
                       on_progress=lambda p: passes.append(p.forward_passes), should_stop=stop)
    assert len(passes) == 3


@pytest.mark.parametrize(("code", "instruction", "error"), [
    ("", "x", engine.InvalidRequestError),
    ("  \n\n", "x", engine.InvalidRequestError),
    ("x = 1", "  ", engine.InvalidRequestError),
])
def test_bad_requests_are_refused(chat_model: engine.LoadedModel, code: str, instruction: str,
                                  error: type[Exception]) -> None:
    with pytest.raises(error):
        engine.rewrite(chat_model, code, instruction)


def test_prompt_longer_than_the_context_is_refused(chat_model: engine.LoadedModel) -> None:
    with pytest.raises(engine.PromptTooLongError, match="context of 4096 tokens"):
        engine.rewrite(chat_model, "x = 1\n" * 3000, "rename x")


class _UntouchableTokenizer:
    """Fails the test on any use: the request must be refused before it is tokenised."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the tokenizer was used ({name}) for a request that cannot fit")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the tokenizer was called for a request that cannot fit")


def test_huge_selection_is_refused_before_tokenising(chat_model: engine.LoadedModel) -> None:
    loaded = dataclasses.replace(chat_model, tokenizer=_UntouchableTokenizer())
    one_line = "x = '" + "a" * 2_000_000 + "'\n"  # 2 MB, one line: 2,000,007 characters
    # The instruction's 8 characters count too.
    with pytest.raises(engine.PromptTooLongError, match="2,000,015 characters.*4,096 tokens"):
        engine.rewrite(loaded, one_line, "rename x")
    # Context counts too: a small selection inside a huge file is refused alike.
    with pytest.raises(engine.PromptTooLongError, match="cannot fit"):
        engine.rewrite(loaded, "x = 1\n", "rename x", context_before=one_line)


def test_unknown_method_is_refused(chat_model: engine.LoadedModel) -> None:
    with pytest.raises(engine.InvalidRequestError, match="unknown method"):
        engine.rewrite(chat_model, CODE, "x", method="beam")


@pytest.mark.parametrize(("method", "message"), [
    ("speculative:0", "bad method 'speculative:0'"),
    ("greedy:4", "bad method 'greedy:4'"),
    ("hf-prompt-lookup", "unknown method"),  # a baseline of the bench, not a way to rewrite
    ("draft-model", "needs a draft model"),
])
def test_bad_method_spellings_are_refused(chat_model: engine.LoadedModel, method: str,
                                          message: str) -> None:
    with pytest.raises(engine.InvalidRequestError, match=message) as info:
        engine.rewrite(chat_model, CODE, "x", method=method)
    assert info.value.field == "method"


def test_capped_method_is_reported_as_spelled(chat_model: engine.LoadedModel) -> None:
    result = engine.rewrite(chat_model, CODE, "x", method="speculative:2", max_new_tokens=20)
    assert result.method == "speculative:2"
    # No draft longer than 2: at most 3 tokens per pass.
    assert result.stats.drafted_tokens <= 2 * result.stats.forward_passes


def scripted_rewrite(output: str, method: str) -> tuple[engine.RewriteResult, ScriptedModel]:
    """A rewrite of CODE by a model whose greedy answer is `output` then the closing fence.

    The scripted model counts every forward pass it is given, whoever gives it.
    """
    tok = chat_tokenizer()
    prompt = build_prompt(tok, CODE, "x")
    script = tok(output + "```", add_special_tokens=False)["input_ids"]
    model = ScriptedModel(len(prompt.prompt_ids), script, len(tok))
    model.config = SimpleNamespace(max_position_embeddings=4096)
    loaded = engine.LoadedModel(model, tok, "scripted", "scripted", torch.device("cpu"),
                                torch.float32)
    return engine.rewrite(loaded, CODE, "x", method=method), model


def test_unchanged_region_costs_one_pass_and_no_timing_pass() -> None:
    result, model = scripted_rewrite(CODE, "speculative")
    assert result.text == CODE
    assert model.calls == result.stats.forward_passes == 1
    # No one-token pass was timed, so there is nothing to estimate greedy's time from.
    assert result.stats.estimated_greedy_seconds is None
    assert result.stats.estimated_speedup is None


def test_greedy_estimate_comes_from_passes_the_rewrite_made() -> None:
    edited = CODE.replace("pass", "x = 1")
    for method in ("speculative", "greedy", "prompt-lookup"):
        result, model = scripted_rewrite(edited, method)
        assert result.text == edited, method
        assert model.calls == result.stats.forward_passes, method
        assert result.stats.estimated_greedy_seconds is not None, method
