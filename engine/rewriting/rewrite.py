"""`rewrite()`, the Python API: one instruction applied to one region of code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.contract import (
    DEFAULT_METHOD,
    DEFAULT_PROMPT_FORMAT,
    PromptTooLongError,
    default_max_new_tokens,
)
from engine.decode.loop import DecodeResult, ProgressCallback, StopPredicate, decode
from engine.decode.methods import MethodConfig, as_method, check_draft_model
from engine.decode.runner import synchronize
from engine.model.loading import LoadedModel

from .prepare import prepare_decoding
from .prompt import RewritePrompt, answer_text, build_prompt, partial_answer_text
from .request import check_fits_roughly, check_rewrite_request
from .result import RewriteResult


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


def finish_rewrite(loaded: LoadedModel, prepared: PreparedRewrite, method: str,
                   result: DecodeResult) -> RewriteResult:
    """The decoded tokens as the rewritten region, with the run's statistics."""
    decoded = loaded.tokenizer.decode(result.tokens, skip_special_tokens=False)
    return RewriteResult(text=answer_text(decoded, prepared.code), method=method,
                         model=loaded.name, stats=result.stats,
                         finish_reason=result.finish_reason, output_ids=result.tokens)


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
    runner, proposer = prepare_decoding(loaded, config, prompt=prompt.prompt_ids,
                                        original=prompt.draft_ids,
                                        stop_ids=prompt.stop.stop_tokens.ids, draft=draft)
    result = decode(runner, prompt.prompt_ids, proposer, prompt.stop, prepared.max_new_tokens,
                    on_progress=on_progress, should_stop=should_stop)
    synchronize(loaded.device)
    return finish_rewrite(loaded, prepared, config.label, result)
