"""A chat completion for any conversation, with an optional predicted output as the draft.

The prediction feeds the same proposer and decoding loop as the original code does in a
rewrite, so at temperature 0 the completion is greedy decoding's, token for token. Above
temperature 0 the loop's rule is speculative sampling's (decode/sampling.py), whose output is
distributed exactly as plain sampling's. Without a prediction, prompt lookup over the prompt
drafts.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.contract import PromptTooLongError
from engine.decode.loop import GREEDY, StopPredicate, decode
from engine.decode.methods import MethodConfig
from engine.decode.runner import ModelRunner
from engine.decode.sampling import SampledAcceptance, Sampler
from engine.decode.stats import DecodeStats
from engine.decode.stopping import StopTokens, StreamedText, TextStop, Watched, cut_at_stop
from engine.model.loading import LoadedModel

from .prepare import prepare_decoding
from .prompt import stop_token_ids


@dataclass(frozen=True)
class CompletionSettings:
    max_new_tokens: int | None = None  # None: the room left in the context
    temperature: float = 1.0  # OpenAI's default; 0 is greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False  # decode to max_new_tokens even past an end-of-turn token


@dataclass
class ChatPrompt:
    text: str
    ids: list[int]


@dataclass
class CompletionResult:
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" or "length"
    stats: DecodeStats
    prediction_tokens: int
    accepted_prediction_tokens: int  # as OpenAI counts them: count_prediction_tokens
    rejected_prediction_tokens: int


def chat_prompt(tokenizer: Any, messages: Sequence[Mapping[str, str]], *,
                add_generation_prompt: bool = True,
                continue_final_message: bool = False) -> ChatPrompt:
    """The conversation in the model's chat template (a plain transcript without one)."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            list(messages), tokenize=False,
            add_generation_prompt=add_generation_prompt and not continue_final_message,
            continue_final_message=continue_final_message)
    else:
        text = "".join(f"{m['role']}: {m['content']}\n\n" for m in messages)
        if continue_final_message and text:
            text = text[:-2]
        elif add_generation_prompt:
            text += "assistant: "
    return ChatPrompt(text, tokenizer(text, add_special_tokens=False)["input_ids"])


def prediction_ids(tokenizer: Any, prompt: ChatPrompt, prediction: str) -> list[int]:
    """The prediction as the answer would spell it: tokenised in context when the prompt's
    tokens survive unchanged (as build_prompt does for the original code), else alone."""
    if not prediction:
        return []
    joint = tokenizer(prompt.text + prediction, add_special_tokens=False)["input_ids"]
    if joint[: len(prompt.ids)] == prompt.ids:
        return joint[len(prompt.ids):]
    return tokenizer(prediction, add_special_tokens=False)["input_ids"]


def count_prediction_tokens(prediction: Sequence[int],
                            completion: Sequence[int]) -> tuple[int, int]:
    """(accepted, rejected) as OpenAI defines them for Predicted Outputs.

    accepted: prediction tokens that appear in the completion, counted as the prediction
    tokens in the matching blocks difflib.SequenceMatcher (autojunk off) finds between the
    two token sequences (a common subsequence, so each token counts at most once and in
    order); rejected: the other prediction tokens. accepted + rejected = len(prediction).
    """
    if not prediction or not completion:
        return 0, len(prediction)
    matcher = difflib.SequenceMatcher(None, list(prediction), list(completion), autojunk=False)
    accepted = sum(block.size for block in matcher.get_matching_blocks())
    return accepted, len(prediction) - accepted


def check_fits(prompt_tokens: int, max_new_tokens: int | None,
               context_length: int | None) -> int:
    """max_new_tokens, defaulting to the room left; PromptTooLongError where there is none."""
    if context_length is None:
        return max_new_tokens if max_new_tokens is not None else 4096
    room = context_length - prompt_tokens
    if room < 1:
        raise PromptTooLongError(
            f"the messages are {prompt_tokens:,} tokens, more than the model's context of "
            f"{context_length:,} tokens: shorten the messages")
    if max_new_tokens is None:
        return room
    if max_new_tokens > room:
        raise PromptTooLongError(
            f"the messages ({prompt_tokens:,} tokens) plus max_tokens ({max_new_tokens:,}) "
            f"exceed the model's context of {context_length:,} tokens: shorten the messages "
            "or lower max_tokens")
    return max_new_tokens


def complete(
    loaded: LoadedModel,
    runner: ModelRunner,
    prompt: ChatPrompt,
    prediction: Sequence[int],
    settings: CompletionSettings,
    *,
    on_text: Callable[[str], None] | None = None,
    should_stop: StopPredicate | None = None,
) -> CompletionResult:
    """Decode a completion of `prompt`; `prediction` (token ids, may be empty) is the draft.

    `on_text` receives the text in pieces as it is decided (for streaming); the pieces add up
    to the result's text. Raises RewriteCancelled when `should_stop` says so.
    """
    max_new = check_fits(len(prompt.ids), settings.max_new_tokens, loaded.context_length)
    tokenizer = loaded.tokenizer
    ids = frozenset() if settings.ignore_eos else stop_token_ids(tokenizer, loaded.model)
    stop: Any = TextStop(tokenizer, StopTokens(ids), tuple(settings.stop))
    streamed = StreamedText(tokenizer, tuple(settings.stop))
    if on_text is not None:
        def report(tokens: list[int]) -> None:
            piece = streamed.delta(tokens)
            if piece:
                on_text(piece)

        stop = Watched(stop, max_new, report)
    # The prediction is drafted like the original code of a rewrite (sized from the pass-cost
    # curve, so a rejected prediction costs little more than plain decoding); without one,
    # n-gram lookup in the prompt.
    method = MethodConfig("speculative" if prediction else "prompt-lookup")
    runner, proposer = prepare_decoding(loaded, method, prompt=prompt.ids, original=prediction,
                                        runner=runner)
    rule = (GREEDY if settings.temperature <= 0 else
            SampledAcceptance(Sampler(settings.temperature, settings.top_p, settings.seed)))
    result = decode(runner, prompt.ids, proposer, stop, max_new, rule=rule,
                    should_stop=should_stop)
    text, cut = cut_at_stop(streamed.text_of(result.tokens), settings.stop)
    if on_text is not None:
        rest = streamed.final(result.tokens)
        if rest:
            on_text(rest)
    accepted, rejected = count_prediction_tokens(prediction, result.tokens)
    return CompletionResult(text=text, token_ids=result.tokens,
                            finish_reason="stop" if cut else result.finish_reason,
                            stats=result.stats, prediction_tokens=len(prediction),
                            accepted_prediction_tokens=accepted,
                            rejected_prediction_tokens=rejected)
