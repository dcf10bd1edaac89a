"""`rewrite()`, the Python API: one instruction applied to one region of code."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .contract import (
    DEFAULT_METHOD,
    DEFAULT_PROMPT_FORMAT,
    PromptTooLongError,
    default_max_new_tokens,
)
from .cost_curve import pass_cost
from .decoding import (
    DecodeResult,
    DecodeStats,
    ProgressCallback,
    StopPredicate,
    greedy_reference,
    verify_loop,
)
from .loading import LoadedModel
from .methods import MethodConfig, as_method, build_proposer, check_draft_model
from .prompt import RewritePrompt, answer_text, build_prompt, partial_answer_text
from .request import check_fits_roughly, check_rewrite_request
from .rewrite_result import RewriteResult, RewriteStats
from .runner import ModelRunner, synchronize
from .threads import apply_threads, thread_governor


@dataclass
class PreparedRewrite:
    """A checked request, its prompt, and the room the rewrite has."""

    code: str
    prompt: RewritePrompt
    max_new_tokens: int


def prepare_rewrite(loaded: LoadedModel, code: str, instruction: str, *,
                    language: str | None = None, context_before: str = "",
                    context_after: str = "", max_new_tokens: int | None = None,
                    prompt_format: str = DEFAULT_PROMPT_FORMAT) -> PreparedRewrite:
    """Check the request, build its prompt and check that prompt and rewrite fit the context.

    Shared by `rewrite` and the benchmark's transformers baseline, so both refuse alike.
    """
    instruction = check_rewrite_request(code, instruction, max_new_tokens=max_new_tokens)
    # Before tokenising: megabytes of text take seconds and hundreds of MB to tokenise.
    check_fits_roughly(len(code) + len(context_before) + len(context_after) + len(instruction),
                       loaded.context_length)
    prompt = build_prompt(loaded.tokenizer, code, instruction, language=language,
                          context_before=context_before, context_after=context_after,
                          model=loaded.model, prompt_format=prompt_format)
    if max_new_tokens is None:
        max_new_tokens = default_max_new_tokens(len(prompt.draft_ids))
    _check_fits(loaded, prompt, max_new_tokens)
    return PreparedRewrite(code, prompt, max_new_tokens)


def _check_fits(loaded: LoadedModel, prompt: RewritePrompt, max_new_tokens: int) -> None:
    limit = loaded.context_length
    needed = len(prompt.prompt_ids) + max_new_tokens
    if limit is not None and needed > limit:
        raise PromptTooLongError(
            f"the prompt ({len(prompt.prompt_ids)} tokens) plus room for the rewrite "
            f"({max_new_tokens} tokens) exceeds {loaded.name}'s context of {limit} tokens: "
            "select less code, lower contextLines / --max-new-tokens, or use a longer-context model"
        )


def estimate_greedy_seconds(stats: DecodeStats) -> float | None:
    """Greedy's time: the prefill plus one one-token step per output token.

    Only from the one-token passes this run timed anyway (None when there were none, as for
    an unchanged region confirmed in one pass): the estimate never costs a pass of its own.
    """
    steps = sorted(stats.single_pass_seconds)
    if not steps:
        return None
    step = steps[len(steps) // 2]
    return step * max(stats.output_tokens, 1) + step * max(1, stats.prompt_tokens // 64)


def finish_rewrite(loaded: LoadedModel, prepared: PreparedRewrite, method: str,
                   result: DecodeResult, estimate: float | None) -> RewriteResult:
    """The decoded tokens as the rewritten region, with the run's statistics."""
    stats = result.stats
    decoded = loaded.tokenizer.decode(result.tokens, skip_special_tokens=False)
    return RewriteResult(
        text=answer_text(decoded, prepared.code),
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


def partial_text(loaded: LoadedModel, code: str, tokens: Sequence[int]) -> str:
    """The rewritten region so far from the output tokens so far (`Progress.tokens`).

    Decodes the whole output (a tokenizer cannot decode pieces independently), so callers
    call it only when they will show the result, not after every forward pass.
    """
    decoded = loaded.tokenizer.decode(list(tokens), skip_special_tokens=False)
    return partial_answer_text(decoded, code)


def rewrite(
    loaded: LoadedModel,
    code: str,
    instruction: str,
    *,
    language: str | None = None,
    context_before: str = "",
    context_after: str = "",
    method: str | MethodConfig = DEFAULT_METHOD,
    max_new_tokens: int | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: StopPredicate | None = None,
    draft: LoadedModel | None = None,
    log: Callable[[str], None] | None = None,
    prompt_format: str = DEFAULT_PROMPT_FORMAT,
) -> RewriteResult:
    """Rewrite `code` following `instruction`. Output equals greedy decoding's, token for token.

    `method` is a name from `engine.METHODS` or its capped spelling (`speculative:N`), or a
    parsed `MethodConfig`; draft-model needs `draft`, a smaller model of the same family.
    `speculative` given `draft` is the hybrid: the draft model proposes where the output has
    left the original code. Uncapped `speculative` sizes its drafts from the model's
    pass-cost curve, measured on first use (SPECEDIT_PASS_COST overrides it).
    """
    config = as_method(method)
    check_draft_model(config, draft is not None)
    prepared = prepare_rewrite(loaded, code, instruction, language=language,
                               context_before=context_before, context_after=context_after,
                               max_new_tokens=max_new_tokens, prompt_format=prompt_format)
    prompt = prepared.prompt
    apply_threads(loaded.threads)
    # Measured once per model and thread count (cached on `loaded`), and only where drafts
    # are sized from it.
    cost = pass_cost(loaded) if config.uses_pass_cost else None
    runner = ModelRunner(loaded.model)
    governor = thread_governor(loaded.threads)
    runner.before_pass = governor.tick if governor is not None else None
    proposer = build_proposer(config, prompt=prompt.prompt_ids, original=prompt.draft_ids,
                              stop_ids=prompt.stop.stop_tokens.ids, target=loaded, draft=draft,
                              cost=cost)
    if proposer is None:
        result = greedy_reference(runner, prompt.prompt_ids, prompt.stop,
                                  prepared.max_new_tokens, on_progress=on_progress,
                                  should_stop=should_stop)
    else:
        result = verify_loop(runner, prompt.prompt_ids, proposer, prompt.stop,
                             prepared.max_new_tokens, on_progress=on_progress,
                             should_stop=should_stop)
    synchronize(loaded.device)
    return finish_rewrite(loaded, prepared, config.label, result,
                          estimate_greedy_seconds(result.stats))
