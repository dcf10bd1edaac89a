"""The contract every front end shares: names, defaults and error classes.

The CLI, the Python API, the language server and the VS Code extension all read their method,
device and dtype names and their defaults from here (the extension's package.json is tested
against this module). It imports nothing heavy, so that the language server can answer the
handshake and parse settings before torch (seconds to import) is loaded.
"""

from __future__ import annotations

import os

# -- names ----------------------------------------------------------------------------------

# How a rewrite is decoded. Every method gives greedy decoding's output, token for token.
#   speculative:   the original code is the draft (speculative edits)
#   greedy:        one token per forward pass, the reference
#   prompt-lookup: n-gram lookup in the prompt and the output so far as the draft
#   draft-model:   a smaller model of the same family drafts (needs a second model)
METHODS = ("speculative", "greedy", "prompt-lookup", "draft-model")
# What an editor's settings may choose: draft-model needs a second model they cannot name.
SERVER_METHODS = ("speculative", "greedy", "prompt-lookup")
DEVICES = ("auto", "cpu", "cuda", "mps")
# How weights are held: `gguf` computes on a GGUF file's own 4-8 bit blocks (the native
# decoder, CPU only); the others are dense copies.
DTYPES = ("auto", "gguf", "float32", "bfloat16", "float16")
# How the rewrite prompt is worded (engine/prompt.py). Every format primes the answer with the
# opening fence, so the original code, as the answer would spell it, stays the draft.
#   instruction-first: our system message; the instruction, then the context, then the code
#   canitedit:         the CanItEdit harness's layout: ## Code Before, ## Instruction, ## Code After
#   instruction-last:  a one-line system message; the code first, the instruction after it
PROMPT_FORMATS = ("instruction-first", "canitedit", "instruction-last")

# -- defaults -------------------------------------------------------------------------------

# The model when none is named; SPECEDIT_MODEL overrides it for the CLI and the server alike.
MODEL_ENV = "SPECEDIT_MODEL"
# The catalog model with the best CanItEdit pass@1 on all 105 problems
# (engine/bench/results/README.md); a pass costs about three of the 0.5B's.
BUILTIN_DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"
DEFAULT_DEVICE = "auto"
DEFAULT_DTYPE = "auto"
DEFAULT_METHOD = "speculative"
# The format with the best CanItEdit pass@1 (engine/bench/results/README.md): with the 0.5B
# model on all 105 problems, canitedit beat instruction-last and instruction-first (which
# mostly copied the code back unchanged).
DEFAULT_PROMPT_FORMAT = "canitedit"
# Lines on each side of the selection given to the model as context (not rewritten). One
# default for the CLI and the server: 20 lines usually reach the enclosing function or class
# header while keeping the prompt, and so the prefill, short on a CPU.
DEFAULT_CONTEXT_LINES = 20
# CPU threads for forward passes: `auto` (as many as there are idle cores, looked at before
# each rewrite and between its passes, engine/threads.py) or a number. SPECEDIT_THREADS sets
# it for every front end.
THREADS_ENV = "SPECEDIT_THREADS"
DEFAULT_THREADS = "auto"
# None (0 on the wire): room for a rewrite about twice the selection's size.
DEFAULT_MAX_NEW_TOKENS: int | None = None
DEFAULT_PRESETS = ("Add docstrings", "Add type hints", "Add comments explaining the code")

# `specedit api`, the OpenAI-compatible server. Loopback unless told otherwise: any other
# address needs an API key (the server refuses to start without one).
DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8000
# Requests that may wait behind the running one; one more gets 429 at once.
DEFAULT_API_MAX_QUEUE = 8
# Largest request body accepted (413 above it): far more than any context holds as text.
DEFAULT_API_MAX_BODY_BYTES = 4 * 1024 * 1024
# Seconds a client has to send a request's line and headers, counted from the connection's
# opening or from the first byte of its next request: an editor's or SDK's request head is one
# write, so 10 s only ever cuts off a stalled or deliberately slow client (Apache's
# mod_reqtimeout allows 20-40 s for a head over the open internet).
DEFAULT_API_HEADER_TIMEOUT = 10.0
# Seconds a client has to send a request's whole body once its headers are in (408 after):
# the largest body allowed (4 MiB) then needs about 1.1 Mbit/s, the usual one (a few KiB) a
# trickle; a client that keeps a request open by sending it slowly loses its place.
DEFAULT_API_BODY_TIMEOUT = 30.0
# Seconds an idle connection stays open between requests: longer than the idle time after
# which HTTP clients stop reusing a connection (httpx, so the openai SDK and the language
# server: 5 s), so that the server never closes one a client is just reusing.
DEFAULT_API_KEEP_ALIVE_TIMEOUT = 15
# Connections open at once; a request on one more gets 503 and its connection closes. One
# request decodes at a time and `max_queue` wait, so 64 leaves room for every editor of a
# team to keep a connection alive, and bounds what idle or slow sockets can hold.
DEFAULT_API_MAX_CONNECTIONS = 64
# Most bytes of a request head (line plus headers) buffered while it is still incomplete; past
# it, 400 and the connection closes (h11's limit, at its own default). It bounds what a slow
# client can make the server hold; an API key and a few headers are well under 1 KiB.
DEFAULT_API_MAX_HEADER_BYTES = 16 * 1024
# Messages in one request (400 above it, before the engine sees them): every message costs
# the prompt a few template tokens, so more than 2,048 cannot hold a conversation worth having
# in the context of the models served here (32k tokens at most), and tens of thousands of
# empty ones would only cost seconds of templating and tokenising.
API_MAX_MESSAGES = 2048
# Seconds `specedit api` waits, after SIGTERM or Ctrl-C, for the requests it has answered with
# an error (running ones stop before their next forward pass, waiting ones are refused) to
# reach their clients; any still open then are closed.
API_SHUTDOWN_GRACE = 1.0

# A remote engine (the language server's `specedit.endpoint`, `specedit bench --endpoint`):
# any OpenAI-compatible server. Empty endpoint: the in-process engine. Empty model: the
# server's `specedit.model`. The key is read from the environment variable named here, never
# from settings (which editors sync and show).
DEFAULT_ENDPOINT = ""
DEFAULT_ENDPOINT_MODEL = ""
DEFAULT_ENDPOINT_KEY_ENV = "SPECEDIT_API_KEY"
# Seconds to connect, and at most between two pieces of a streamed answer.
DEFAULT_ENDPOINT_TIMEOUT = 60.0


def default_model() -> str:
    """SPECEDIT_MODEL when set (and not blank), else the built-in default."""
    return os.environ.get(MODEL_ENV, "").strip() or BUILTIN_DEFAULT_MODEL


def default_max_new_tokens(draft_len: int) -> int:
    """Room for a rewrite that grows the region (docstrings, comments) to about twice its size."""
    return max(256, 2 * draft_len + 128)


# -- errors ---------------------------------------------------------------------------------
# Each message is one line that says what to do.


class SpecEditError(Exception):
    """Base class: a request failed in a way the user can act on."""


class InvalidRequestError(SpecEditError):
    """The request itself is unusable (empty selection, empty instruction, bad range).

    `field` names the part at fault when one does ("selection", "instruction", ...).
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ModelNotFoundError(SpecEditError):
    """A model spec resolved to nothing: no catalog entry, no folder, no hub model."""


class UnsupportedModelError(SpecEditError):
    """A model file the engine cannot run: an architecture or weight type it does not have."""


class PromptTooLongError(SpecEditError):
    """Prompt plus the room the rewrite needs exceeds the model's context window."""


class RewriteCancelled(SpecEditError):
    """The caller asked to stop; no text is returned."""

    def __init__(self, message: str = "rewrite cancelled; nothing was changed") -> None:
        super().__init__(message)


class TokenizerMismatchError(SpecEditError):
    """A draft model and its target do not share a tokenizer."""


class EndpointError(SpecEditError):
    """A remote OpenAI-compatible endpoint failed or refused; the message is one line.

    `status` is the HTTP status when there was one; `param` the field the server blamed.
    """

    def __init__(self, message: str, status: int | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param


class CatalogError(SpecEditError):
    """A catalog pull failed (download, verification, conversion); the message is one line."""
