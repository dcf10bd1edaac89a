"""Request and response bodies of the chat completions API, mirroring OpenAI's.

Only the fields this server honours are declared; others a client sends are accepted and
ignored (OpenAI's clients send fields such as `user` or `metadata`), except those that would
change the answer's meaning, which `ChatCompletionRequest.check_supported` refuses.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.contract import InvalidRequestError


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


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = None
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

    def check_supported(self) -> None:
        if self.n != 1:
            raise InvalidRequestError("n must be 1: this server returns one choice", field="n")
        if self.model_extra and self.model_extra.get("logprobs"):
            raise InvalidRequestError("logprobs are not supported", field="logprobs")
        if self.model_extra and self.model_extra.get("tools"):
            raise InvalidRequestError("tools are not supported", field="tools")
        if len(self.stop_strings) > 4:
            raise InvalidRequestError("stop takes at most 4 strings", field="stop")
        if self.continue_final_message and self.messages[-1].role != "assistant":
            raise InvalidRequestError(
                "continue_final_message needs the last message to be the assistant's",
                field="continue_final_message")

    @property
    def stop_strings(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        stops = [self.stop] if isinstance(self.stop, str) else self.stop
        return tuple(s for s in stops if s)

    @property
    def max_new_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


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
