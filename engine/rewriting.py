"""`rewrite()`, the Python API: one instruction applied to one region of code."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .contract import (
    DEFAULT_PROMPT_FORMAT,
    InvalidRequestError,
    PromptTooLongError,
    RewriteCancelled,
)
from .decoding import (
    DecodeResult,
    DecodeStats,
    ProgressCallback,
    StopPredicate,
    greedy_reference,
    verify_loop,
)
from .loading import LoadedModel
from .prompt import RewritePrompt, answer_text, build_prompt
from .proposers import OriginalCodeProposer, OriginalDraftSettings, PromptLookupProposer
from .runner import ModelRunner, synchronize

METHODS = ("speculative", "greedy", "prompt-lookup", "ngram", "draft-model")


@dataclass
class RewriteStats:
    forward_passes: int
    prompt_tokens: int
    output_tokens: int
    drafted_tokens: int
    accepted_tokens: int
    wall_seconds: float
    tokens_per_second: float
    draft_forward_passes: int = 0
    # Greedy's time for the same output, estimated from this run's one-token passes.
    estimated_greedy_seconds: float | None = None
    estimated_speedup: float | None = None


@dataclass
class RewriteResult:
    text: str
    method: str
    model: str
    stats: RewriteStats
    finish_reason: str  # "stop" or "length"
    output_ids: list[int] = field(repr=False, default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("output_ids")
        return data


def default_max_new_tokens(draft_len: int) -> int:
    """Room for a rewrite that grows the region (docstrings, comments) to about twice its size."""
    return max(256, 2 * draft_len + 128)


def _check_request(code: str, instruction: str) -> None:
    if not code.strip():
        raise InvalidRequestError("the selection is empty: select the code to rewrite first")
    if not instruction.strip():
        raise InvalidRequestError("the instruction is empty: say how to rewrite the code")


def _check_fits(loaded: LoadedModel, prompt: RewritePrompt, max_new_tokens: int) -> None:
    limit = loaded.context_length
    needed = len(prompt.prompt_ids) + max_new_tokens
    if limit is not None and needed > limit:
        raise PromptTooLongError(
            f"the prompt ({len(prompt.prompt_ids)} tokens) plus room for the rewrite "
            f"({max_new_tokens} tokens) exceeds {loaded.name}'s context of {limit} tokens: "
            "select less code, lower contextLines / --max-new-tokens, or use a longer-context model"
        )


def _estimate_greedy(loaded: LoadedModel, runner: ModelRunner, stats: DecodeStats,
                     prompt_len: int) -> float | None:
    """Greedy's time: the prefill plus one measured one-token step per output token."""
    steps = sorted(stats.single_pass_seconds)
    if not steps and runner.cache is not None and runner.cached:
        # No one-token pass happened (an unchanged region): time one now, outside the stats.
        started = time.perf_counter()
        runner.predict(runner.cached + runner.cached[-1:])
        synchronize(loaded.device)
        steps = [time.perf_counter() - started]
    if not steps:
        return None
    step = steps[len(steps) // 2]
    return step * max(stats.output_tokens, 1) + step * max(1, prompt_len // 64)


def _prompt_lookup_transformers(loaded: LoadedModel, prompt: RewritePrompt, max_new_tokens: int,
                                should_stop: StopPredicate | None) -> DecodeResult:
    """transformers' own prompt lookup decoding: what a user would otherwise pick."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    calls = {"n": 0}
    prompt_len = len(prompt.prompt_ids)

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
            calls["n"] += 1
            if should_stop is not None and should_stop():
                raise RewriteCancelled()
            generated = input_ids[0, prompt_len:].tolist()
            done = prompt.stop.first_stop(generated, 0) is not None
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool,
                              device=input_ids.device)

    model = loaded.model
    counter = _PassCounter(model)
    started = time.perf_counter()
    with counter:
        out = model.generate(
            torch.tensor([prompt.prompt_ids], device=loaded.device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            prompt_lookup_num_tokens=10,
            stopping_criteria=StoppingCriteriaList([_Stop()]),
            eos_token_id=sorted(prompt.stop.stop_tokens.ids) or None,
            pad_token_id=loaded.tokenizer.pad_token_id or loaded.tokenizer.eos_token_id,
        )
    synchronize(loaded.device)
    generated = out[0, prompt_len:].tolist()
    end = prompt.stop.first_stop(generated, 0)
    finish = "stop" if end is not None else "length"
    tokens = generated[:end] if end is not None else generated[:max_new_tokens]
    stats = DecodeStats(prompt_tokens=prompt_len, output_tokens=len(tokens),
                        forward_passes=counter.count,
                        wall_seconds=time.perf_counter() - started)
    return DecodeResult(tokens, stats, finish)


class _PassCounter:
    """Counts a model's forward passes inside a `with` block (for transformers' generate)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.count = 0
        self._handle: Any = None

    def __enter__(self) -> _PassCounter:
        def hook(*_: Any) -> None:
            self.count += 1

        self._handle = self.model.register_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()


def rewrite(
    loaded: LoadedModel,
    code: str,
    instruction: str,
    *,
    language: str | None = None,
    context_before: str = "",
    context_after: str = "",
    method: str = "speculative",
    max_new_tokens: int | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: StopPredicate | None = None,
    draft: LoadedModel | None = None,
    draft_settings: OriginalDraftSettings | None = None,
    log: Callable[[str], None] | None = None,
    prompt_format: str = DEFAULT_PROMPT_FORMAT,
) -> RewriteResult:
    """Rewrite `code` following `instruction`. Output equals greedy decoding's, token for token."""
    if method not in METHODS:
        raise InvalidRequestError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    _check_request(code, instruction)
    prompt = build_prompt(loaded.tokenizer, code, instruction, language=language,
                          context_before=context_before, context_after=context_after,
                          model=loaded.model, prompt_format=prompt_format)
    if max_new_tokens is None:
        max_new_tokens = default_max_new_tokens(len(prompt.draft_ids))
    if max_new_tokens < 1:
        raise InvalidRequestError("max_new_tokens must be at least 1")
    _check_fits(loaded, prompt, max_new_tokens)

    runner = ModelRunner(loaded.model)
    if method == "prompt-lookup":
        result = _prompt_lookup_transformers(loaded, prompt, max_new_tokens, should_stop)
    elif method == "greedy":
        result = greedy_reference(runner, prompt.prompt_ids, prompt.stop, max_new_tokens,
                                  on_progress=on_progress, should_stop=should_stop)
    else:
        if method == "speculative":
            proposer: Any = OriginalCodeProposer(prompt.draft_ids, draft_settings)
        elif method == "ngram":
            proposer = PromptLookupProposer(prompt.prompt_ids)
        else:
            if draft is None:
                raise InvalidRequestError("method draft-model needs a draft model (--draft)")
            from .draft_model import DraftModelProposer

            proposer = DraftModelProposer.for_models(draft, loaded, prompt.prompt_ids,
                                                     stop_ids=prompt.stop.stop_tokens.ids)
        result = verify_loop(runner, prompt.prompt_ids, proposer, prompt.stop, max_new_tokens,
                             on_progress=on_progress, should_stop=should_stop)
    synchronize(loaded.device)
    stats = result.stats
    estimate = None
    if method != "prompt-lookup":
        estimate = _estimate_greedy(loaded, runner, stats, len(prompt.prompt_ids))
    decoded = loaded.tokenizer.decode(result.tokens, skip_special_tokens=False)
    return RewriteResult(
        text=answer_text(decoded, code),
        method=method,
        model=loaded.name,
        stats=RewriteStats(
            forward_passes=stats.forward_passes,
            prompt_tokens=stats.prompt_tokens,
            output_tokens=stats.output_tokens,
            drafted_tokens=stats.drafted_tokens,
            accepted_tokens=stats.accepted_tokens,
            wall_seconds=stats.wall_seconds,
            tokens_per_second=stats.tokens_per_second,
            draft_forward_passes=stats.draft_forward_passes,
            estimated_greedy_seconds=estimate,
            estimated_speedup=(estimate / stats.wall_seconds
                               if estimate and stats.wall_seconds > 0 else None),
        ),
        finish_reason=result.finish_reason,
        output_ids=result.tokens,
    )
