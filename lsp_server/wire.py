"""The server's JSON on the wire: rewrite requests in, stats and status out.

Parsing here turns any malformed request into `Refused` with one line that names the field
at fault, so that no Python exception name ever reaches the user. Nothing here runs a
rewrite or touches a document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lsprotocol import converters, types

from .messages import Refused
from .worker import EngineStatus

_converter = converters.get_converter()

# What the server calls the parts of a request, for engine.request.check_rewrite_request.
REQUEST_NAMES: Mapping[str, str] = {
    "selection": "the selection",
    "instruction": "the instruction",
    "max_new_tokens": "specedit.maxNewTokens",
}


def plain(value: Any) -> Any:
    """pygls hands custom requests' params over as namedtuples: back to dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _uri_of(raw: Mapping[str, Any]) -> str:
    """`uri`, or `textDocument.uri` (specedit/rewrite's shape, like LSP's own requests)."""
    if "uri" in raw:
        uri = raw["uri"]
    elif "textDocument" in raw:
        document = raw["textDocument"]
        if not isinstance(document, Mapping):
            raise Refused("textDocument must be an object {uri: ...} "
                          "(a TextDocumentIdentifier), not a bare value")
        uri = document.get("uri")
    else:
        raise Refused("the request needs the document's uri and the selection's range")
    if not isinstance(uri, str) or not uri:
        raise Refused("the document's uri must be a non-empty string")
    return uri


def _progress_token(raw: Mapping[str, Any], key: str) -> types.ProgressToken | None:
    """`workDoneToken` or `partialResultToken`: LSP's ProgressToken, or None when absent."""
    token = raw.get(key)
    if token is None:
        return None
    # LSP's ProgressToken is integer | string; bool is an int to Python but not to JSON.
    if isinstance(token, bool) or not isinstance(token, int | str):
        raise Refused(f"{key} must be a string or an integer")
    return token


@dataclass(frozen=True)
class RewriteRequest:
    """A rewrite as the editor asks for it: a command's argument, an action's data, or the
    params of `specedit/rewrite`."""

    uri: str
    range: types.Range
    instruction: str | None = None
    version: int | None = None  # the document version `range` refers to, when known
    work_done_token: types.ProgressToken | None = None  # the client's own progress token
    # The client's token for partial results: the rewritten region streams under it.
    partial_result_token: types.ProgressToken | None = None

    @classmethod
    def from_wire(cls, raw: Any) -> RewriteRequest:
        """From `{uri, range, instruction?}` or `{textDocument: {uri}, range, instruction}`."""
        raw = plain(raw)
        if not isinstance(raw, Mapping):
            raise Refused("the request needs an object {uri, range, instruction}")
        uri = _uri_of(raw)
        if "range" not in raw:
            raise Refused("the request needs the document's uri and the selection's range")
        try:
            selection = _converter.structure(raw["range"], types.Range)
        except Exception as exc:  # cattrs raises several kinds
            raise Refused("range must be an LSP Range {start: {line, character}, "
                          "end: {line, character}}") from exc
        instruction = raw.get("instruction")
        instruction = instruction.strip() if isinstance(instruction, str) else None
        version = raw.get("version")
        version = version if isinstance(version, int) and not isinstance(version, bool) else None
        return cls(uri, selection, instruction or None, version,
                   _progress_token(raw, "workDoneToken"),
                   _progress_token(raw, "partialResultToken"))

    def to_wire(self) -> dict[str, Any]:
        data: dict[str, Any] = {"uri": self.uri, "range": _converter.unstructure(self.range)}
        if self.instruction is not None:
            data["instruction"] = self.instruction
        if self.version is not None:
            data["version"] = self.version
        if self.work_done_token is not None:
            data["workDoneToken"] = self.work_done_token
        if self.partial_result_token is not None:
            data["partialResultToken"] = self.partial_result_token
        return data


def last_rewrite(result: Any) -> dict[str, Any]:
    """`lastRewrite` of `specedit/status`, from an engine.RewriteResult."""
    s = result.stats
    return {"tokensPerSecond": s.tokens_per_second, "speedup": s.estimated_speedup,
            "outputTokens": s.output_tokens, "forwardPasses": s.forward_passes}


def wire_stats(result: Any) -> dict[str, Any]:
    """`stats` of a rewrite's answer, from an engine.RewriteResult."""
    s = result.stats
    return {
        **last_rewrite(result),
        "promptTokens": s.prompt_tokens,
        "draftedTokens": s.drafted_tokens,
        "acceptedTokens": s.accepted_tokens,
        "wallSeconds": s.wall_seconds,
        "estimatedGreedySeconds": s.estimated_greedy_seconds,
        "method": result.method,
        "model": result.model,
        "finishReason": result.finish_reason,
    }


def status_params(status: EngineStatus) -> dict[str, Any]:
    """The `specedit/status` notification's params."""
    params: dict[str, Any] = {"state": status.state, "model": status.model}
    if status.message:
        params["message"] = status.message
    if status.result is not None:
        params["lastRewrite"] = last_rewrite(status.result)
    return params
