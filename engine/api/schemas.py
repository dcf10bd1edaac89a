"""Request and response bodies of the chat completions API, mirroring OpenAI's.

Only the fields this server honours are declared. Of the others a client sends, those that
would change the answer (penalties, logit_bias, response_format, tools, ...: `REFUSED`) are
refused by name unless they hold their neutral value; the rest (`user`, `metadata`, `store`,
...) are accepted and ignored, as OpenAI's clients send them. OpenAI's request schema
(its SDK's `completion_create_params`) is the reference for which fields take null.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from engine.contract import API_MAX_MESSAGES, InvalidRequestError

# What torch's generator takes: a seed outside this range cannot make a sampled answer
# reproducible, so it is refused rather than folded.
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


Content = str | list[TextPart] | None


def content_text(content: Content, where: str) -> str:
    """A message's or prediction's text: a string, or text parts joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.type != "text" or part.text is None:
            raise InvalidRequestError(
                f"{where}: only text content is supported, not {part.type!r}", field=where)
        texts.append(part.text)
    return "".join(texts)


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: Content = None


class Prediction(BaseModel):
    type: Literal["content"]
    content: str | list[TextPart]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


def _absent_or(*neutral: Any) -> Callable[[Any], bool]:
    """A test that a field leaves the answer as it is: null, or one of `neutral`."""

    def leaves_the_answer(value: Any) -> bool:
        # bool is an int to Python; `false` is no neutral number.
        return value is None or any(
            value == n and isinstance(value, bool) == isinstance(n, bool) for n in neutral)

    return leaves_the_answer


# Fields of OpenAI's request (and of vLLM's, whose extensions this server partly takes) that
# this server does not implement and that would change the answer: each is refused, naming
# it, unless it is absent or holds the value that changes nothing. The answer would otherwise
# silently be another one than the client asked for.
REFUSED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "frequency_penalty": (_absent_or(0), "penalties are not implemented"),
    "presence_penalty": (_absent_or(0), "penalties are not implemented"),
    "logit_bias": (_absent_or({}), "logit_bias is not implemented"),
    "response_format": (_absent_or({"type": "text"}),
                        "only text answers are supported (response_format type 'text')"),
    "tools": (_absent_or([]), "tools are not supported"),
    "tool_choice": (_absent_or("none", "auto"), "tools are not supported"),
    "functions": (_absent_or([]), "functions are not supported"),
    "function_call": (_absent_or("none", "auto"), "functions are not supported"),
    "logprobs": (_absent_or(False), "logprobs are not supported"),
    "top_logprobs": (_absent_or(0), "logprobs are not supported"),
    "modalities": (_absent_or(["text"]), "only text output is supported"),
    "audio": (_absent_or(), "only text output is supported"),
    "reasoning_effort": (_absent_or(), "the served model is not a reasoning model"),
    "verbosity": (_absent_or(), "verbosity is not implemented"),
    "web_search_options": (_absent_or(), "web search is not supported"),
    "moderation": (_absent_or(), "moderation is not supported"),
    # vLLM's sampling and decoding extensions.
    "top_k": (_absent_or(-1, 0), "top_k is not implemented (top_p is)"),
    "min_p": (_absent_or(0), "min_p is not implemented (top_p is)"),
    "repetition_penalty": (_absent_or(1), "penalties are not implemented"),
    "min_tokens": (_absent_or(0), "min_tokens is not implemented"),
    "stop_token_ids": (_absent_or([]), "stop_token_ids is not implemented (stop is)"),
    "bad_words": (_absent_or([]), "bad_words is not implemented"),
    "best_of": (_absent_or(1), "best_of is not implemented"),
    "use_beam_search": (_absent_or(False), "beam search is not implemented"),
    "guided_json": (_absent_or(), "guided decoding is not implemented"),
    "guided_regex": (_absent_or(), "guided decoding is not implemented"),
    "guided_choice": (_absent_or(), "guided decoding is not implemented"),
    "guided_grammar": (_absent_or(), "guided decoding is not implemented"),
    "structured_outputs": (_absent_or(), "guided decoding is not implemented"),
}
# A message's parts that the prompt would drop.
REFUSED_IN_MESSAGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "tool_calls": (_absent_or([]), "tool calls are not supported"),
    "function_call": (_absent_or(), "function calls are not supported"),
}


def _unicode_error(text: str, where: str) -> InvalidRequestError | None:
    """A refusal for text that is not valid Unicode (a lone surrogate, such as JSON's
    "\ud800", which no tokenizer can encode); None for valid text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return InvalidRequestError(
            f"{where}: not valid Unicode text (a lone surrogate at character {exc.start})",
            field=where)
    return None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    prediction: Prediction | None = None
    n: int = 1
    # vLLM's extensions, for prompts that end inside the assistant's turn (as the rewrite
    # prompt does, after its opening fence) and for fixed-length runs.
    add_generation_prompt: bool = True
    continue_final_message: bool = False
    ignore_eos: bool = False

    @model_validator(mode="before")
    @classmethod
    def _count_messages_first(cls, data: Any) -> Any:
        # Before each message is validated: a flood of them is refused at the cost of len().
        # InvalidRequestError is not a ValueError: it passes through validation as it is.
        if isinstance(data, dict) and isinstance(data.get("messages"), list) and (
                len(data["messages"]) > API_MAX_MESSAGES):
            raise InvalidRequestError(
                f"messages: {len(data['messages']):,} messages, more than the "
                f"{API_MAX_MESSAGES:,} this server takes in one request", field="messages")
        return data

    @field_validator("temperature", "top_p", "n", "stream", mode="before")
    @classmethod
    def _null_is_the_default(cls, value: Any, info: ValidationInfo) -> Any:
        # OpenAI takes null for these and reads it as the field's default.
        return cls.model_fields[info.field_name].default if value is None else value

    def check_supported(self) -> None:
        if self.n != 1:
            raise InvalidRequestError("n must be 1: this server returns one choice", field="n")
        for name, value in (self.model_extra or {}).items():
            if name in REFUSED and not REFUSED[name][0](value):
                raise InvalidRequestError(
                    f"{name}: {REFUSED[name][1]}; leave it out (it would change the answer)",
                    field=name)
        for i, message in enumerate(self.messages):
            for name, value in (message.model_extra or {}).items():
                if name in REFUSED_IN_MESSAGES and not REFUSED_IN_MESSAGES[name][0](value):
                    raise InvalidRequestError(
                        f"messages[{i}].{name}: {REFUSED_IN_MESSAGES[name][1]}",
                        field=f"messages[{i}].{name}")
        if len(self.stop_strings) > 4:
            raise InvalidRequestError("stop takes at most 4 strings", field="stop")
        if self.continue_final_message and self.messages[-1].role != "assistant":
            raise InvalidRequestError(
                "continue_final_message needs the last message to be the assistant's",
                field="continue_final_message")
        for text, where in self._texts():
            error = _unicode_error(text, where)
            if error is not None:
                raise error

    def _texts(self) -> list[tuple[str, str]]:
        """Every string of the request that the engine or an answer uses, with its place."""
        texts = [(self.model, "model")]
        for i, message in enumerate(self.messages):
            texts += _content_texts(message.content, f"messages[{i}].content")
        if self.prediction is not None:
            texts += _content_texts(self.prediction.content, "prediction.content")
        stops = [self.stop] if isinstance(self.stop, str) else self.stop or []
        texts += [(s, f"stop[{i}]" if isinstance(self.stop, list) else "stop")
                  for i, s in enumerate(stops)]
        return texts

    @property
    def stop_strings(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        stops = [self.stop] if isinstance(self.stop, str) else self.stop
        return tuple(s for s in stops if s)

    @property
    def max_new_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


def _content_texts(content: Content, where: str) -> list[tuple[str, str]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [(content, where)]
    return [(part.text, f"{where}[{i}].text") for i, part in enumerate(content)
            if part.text is not None]


class CompletionTokensDetails(BaseModel):
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0
    reasoning_tokens: int = 0
    audio_tokens: int = 0


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: CompletionTokensDetails


class SpeculativeStats(BaseModel):
    """Not OpenAI's: what the verifying loop did (clients ignore unknown fields)."""

    forward_passes: int
    drafted_tokens: int
    accepted_draft_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    speculative: SpeculativeStats


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "specedit"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


def error_json(message: str, type_: str, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": ErrorBody(message=message, type=type_, param=param, code=code).model_dump()}
