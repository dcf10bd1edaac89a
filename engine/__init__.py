"""speculative-edits engine: exact greedy code rewrites, with the original code as the draft."""

from .decoding import Progress
from .errors import (
    InvalidRequestError,
    ModelNotFoundError,
    PromptTooLongError,
    RewriteCancelled,
    SpecEditError,
    TokenizerMismatchError,
)
from .loading import LoadedModel, load_model
from .rewrite import METHODS, RewriteResult, RewriteStats, rewrite

__all__ = [
    "METHODS",
    "InvalidRequestError",
    "LoadedModel",
    "ModelNotFoundError",
    "Progress",
    "PromptTooLongError",
    "RewriteCancelled",
    "RewriteResult",
    "RewriteStats",
    "SpecEditError",
    "TokenizerMismatchError",
    "load_model",
    "rewrite",
]
