"""speculative-edits engine: exact greedy code rewrites, with the original code as the draft.

The names and error classes of `engine.contract` are imported eagerly (no torch); everything
else loads on first use, so that importing `engine` for its contract stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .contract import (
    DEVICES,
    DTYPES,
    METHODS,
    CatalogError,
    InvalidRequestError,
    ModelNotFoundError,
    PromptTooLongError,
    RewriteCancelled,
    SpecEditError,
    TokenizerMismatchError,
    default_model,
)

if TYPE_CHECKING:
    from .decoding import Progress
    from .loading import LoadedModel, load_model
    from .methods import MethodConfig, parse_method
    from .rewrite_result import RewriteResult, RewriteStats
    from .rewriting import partial_text, rewrite

# name -> module that defines it (imported on first access)
_LAZY = {
    "Progress": ".decoding",
    "LoadedModel": ".loading",
    "load_model": ".loading",
    "MethodConfig": ".methods",
    "parse_method": ".methods",
    "RewriteResult": ".rewrite_result",
    "RewriteStats": ".rewrite_result",
    "rewrite": ".rewriting",
    "partial_text": ".rewriting",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEVICES",
    "DTYPES",
    "METHODS",
    "CatalogError",
    "InvalidRequestError",
    "LoadedModel",
    "MethodConfig",
    "ModelNotFoundError",
    "Progress",
    "PromptTooLongError",
    "RewriteCancelled",
    "RewriteResult",
    "RewriteStats",
    "SpecEditError",
    "TokenizerMismatchError",
    "default_model",
    "load_model",
    "parse_method",
    "partial_text",
    "rewrite",
]
