"""Errors the engine raises. Each message is one line that says what to do."""

from __future__ import annotations


class SpecEditError(Exception):
    """Base class: a request failed in a way the user can act on."""


class InvalidRequestError(SpecEditError):
    """The request itself is unusable (empty selection, empty instruction, bad range)."""


class ModelNotFoundError(SpecEditError):
    """A model spec resolved to nothing: no catalog entry, no folder, no hub model."""


class PromptTooLongError(SpecEditError):
    """Prompt plus the room the rewrite needs exceeds the model's context window."""


class RewriteCancelled(SpecEditError):
    """The caller asked to stop; no text is returned."""

    def __init__(self, message: str = "rewrite cancelled; nothing was changed") -> None:
        super().__init__(message)


class TokenizerMismatchError(SpecEditError):
    """A draft model and its target do not share a tokenizer."""
