"""A rewrite by a remote OpenAI-compatible endpoint: our prompt, the original as `prediction`.

The messages are `engine.prompt.rewrite_messages`'s, so a server running the same model
greedily (temperature 0) returns the in-process rewrite's text. The answer is primed with the
opening fence through vLLM's `continue_final_message` extension (which `specedit api` honours
too): the model starts straight into the code, as in process. A server that refuses a field we
send (`prediction`, the priming fields) gets one retry without it, said in the log; a server
that ignores the priming and opens its own fence is recognised, and the first fenced block of
its reply is taken. Imports no torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from engine.contract import DEFAULT_PROMPT_FORMAT, EndpointError, default_max_new_tokens
from engine.decode.stats import DecodeStats

from .endpoint import ChatReply, Endpoint, rejected_field, stream_chat
from .prompt import answer_text, has_closing_fence, rewrite_messages
from .result import RewriteResult

REMOTE_METHOD = "remote"
PRIMING_FIELDS = ("continue_final_message", "add_generation_prompt")
# Text pieces read after the closing fence before the stream is closed: a chat model ends its
# turn a token or two after the fence, and waiting for that end gets the server's usage (and
# pass counts); one that rambles on is cut off, and its counts are then unknown.
AFTER_FENCE_CHUNKS = 8
# The client has no tokenizer to size max_tokens as the in-process engine does (about twice
# the selection): code averages 3-4 characters a token with common BPE vocabularies, so 3
# errs toward more room.
CHARS_PER_TOKEN = 3

# An opening fence at the start of a line: ``` and an optional tag, up to the line's end.
_OPENING_FENCE = re.compile(r"(?:^|\n)```[^\n`]*\n")


@dataclass
class RemoteResult(RewriteResult):
    """A rewrite from an endpoint: its stats as far as the endpoint tells them (0 where it
    does not; `forward_passes` only from `specedit api`), and which fields it took."""

    prediction_sent: bool = True  # False when the endpoint refused it (or it was not asked)
    primed: bool = True


def extract_region(reply: str, original: str, primed: bool,
                   final: bool) -> tuple[str | None, bool]:
    """(the rewritten region so far, whether its closing fence has come).

    None while it cannot be told yet (a reply that has not reached its opening fence).
    `primed`: the request opened the fence; a reply that opens one anyway (a server that
    ignored the priming) is read as unprimed.
    """
    if primed and reply.startswith("```"):
        first_line, _, rest = reply.partition("\n")
        # A tag, or anything after the fence line (a primed model ends its turn right after
        # a closing fence): an opening fence, so the server did not continue ours.
        if first_line[3:].strip() or rest.strip():
            primed = False
        elif not final:
            return None, False  # "```" alone: an empty rewrite, or an opening fence
    if not primed:
        match = _OPENING_FENCE.search(reply)
        if match is None:
            # Prose before the fence, or no fence at all: at the end, the reply is the code.
            return (answer_text(reply, original), True) if final else (None, False)
        reply = reply[match.end():]
    return answer_text(reply, original), has_closing_fence(reply)


def max_tokens_for(answer: str, max_new_tokens: int | None) -> int:
    if max_new_tokens is not None:
        return max_new_tokens
    return default_max_new_tokens(math.ceil(len(answer) / CHARS_PER_TOKEN))


PartialCallback = Callable[[str | None, int], None]  # (region so far, pieces so far)


async def remote_rewrite(
    client: httpx.AsyncClient,
    endpoint: Endpoint,
    code: str,
    instruction: str,
    *,
    language: str | None = None,
    context_before: str = "",
    context_after: str = "",
    max_new_tokens: int | None = None,
    prediction: bool = True,
    prime: bool = True,
    prompt_format: str = DEFAULT_PROMPT_FORMAT,
    on_partial: PartialCallback | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> RemoteResult:
    """Rewrite `code` at `endpoint`, greedily (temperature 0), streamed.

    Cancel the coroutine to stop: the stream is closed and the server stops decoding.
    """
    wording = rewrite_messages(code, instruction, language=language,
                               context_before=context_before, context_after=context_after,
                               prompt_format=prompt_format)
    refused: set[str] = set()
    while True:
        body: dict[str, Any] = {
            "messages": wording.chat() + (
                [{"role": "assistant", "content": wording.primer}] if prime else []),
            "temperature": 0,
            "max_tokens": max_tokens_for(wording.primer + wording.answer, max_new_tokens),
        }
        if prime:
            body.update(continue_final_message=True, add_generation_prompt=False)
        if prediction:
            # The original as the answer spells it: after our fence, or with its own.
            content = wording.answer if prime else wording.primer + wording.answer
            body["prediction"] = {"type": "content", "content": content}
        sent = (("prediction",) if prediction else ()) + (PRIMING_FIELDS if prime else ())
        try:
            reply = await _read_reply(client, endpoint, body, code, prime, on_partial)
        except EndpointError as exc:
            blamed = rejected_field(exc, sent)
            if blamed is None or blamed in refused:
                raise
            refused.add(blamed)
            if blamed == "prediction":
                prediction = False
                log(f"{endpoint.base_url} refused `prediction` ({exc}); retrying once "
                    "without it: the rewrite is the same, only slower")
            else:
                prime = False
                log(f"{endpoint.base_url} refused `{blamed}` ({exc}); retrying once without "
                    "priming the answer: the first code block of the reply is taken")
            continue
        return _result(reply, endpoint, code, prime, prediction)


async def _read_reply(client: httpx.AsyncClient, endpoint: Endpoint, body: dict[str, Any],
                      code: str, primed: bool,
                      on_partial: PartialCallback | None) -> ChatReply:
    fence_at: int | None = None  # pieces read when the closing fence came

    def on_text(text: str, chunks: int) -> bool:
        nonlocal fence_at
        region, closed = extract_region(text, code, primed, final=False)
        if on_partial is not None:
            on_partial(region, chunks)
        if closed and fence_at is None:
            fence_at = chunks
        return fence_at is not None and chunks - fence_at >= AFTER_FENCE_CHUNKS

    return await stream_chat(client, endpoint, body, on_text)


def _result(reply: ChatReply, endpoint: Endpoint, code: str, primed: bool,
            prediction: bool) -> RemoteResult:
    region, closed = extract_region(reply.text, code, primed, final=True)
    usage = reply.usage or {}
    details = usage.get("completion_tokens_details") or {}
    spec = reply.speculative or {}
    accepted_prediction = int(details.get("accepted_prediction_tokens") or 0)
    rejected_prediction = int(details.get("rejected_prediction_tokens") or 0)
    output_tokens = int(usage.get("completion_tokens") or reply.chunks)
    wall = reply.wall_seconds
    return RemoteResult(
        text=region or "",
        method=REMOTE_METHOD,
        model=endpoint.model,
        stats=DecodeStats(
            forward_passes=int(spec.get("forward_passes") or 0),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=output_tokens,
            drafted_tokens=int(spec.get("drafted_tokens")
                               or accepted_prediction + rejected_prediction),
            accepted_tokens=int(spec.get("accepted_draft_tokens") or accepted_prediction),
            wall_seconds=wall,
        ),
        # The fence ends a rewrite as in process, whatever the server said after it.
        finish_reason="stop" if closed else (reply.finish_reason or "stop"),
        prediction_sent=prediction,
        primed=primed,
    )
