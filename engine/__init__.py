"""speculative-edits engine: exact greedy code rewrites, with the original code as the draft.

The public Python API. The names and error classes of `engine.contract` are imported eagerly
(no torch); everything else loads on first use, so that importing `engine` stays cheap.

Layers, lowest first (each imports only those below it; tests/test_layers.py checks it):
contract.py (names, defaults, errors) < decode/ (runner, loop, proposers, draft length,
sampling) < model/ (devices, loading, packed layers, pass cost, threads, catalog) < rewriting/
(prompt, request, rewrite, completion, remote endpoints, the engine worker) < the front ends
(api/ and the top-level lsp_server package; then cli/, which starts them) < bench/ (the lab).
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
    UnsupportedModelError,
    default_model,
)

if TYPE_CHECKING:
    from .decode.methods import MethodConfig, parse_method
    from .decode.stats import DecodeStats, Progress
    from .model.loading import LoadedModel, load_model
    from .rewriting.result import RewriteResult
    from .rewriting.rewrite import partial_text, rewrite

# name -> module that defines it (imported on first access)
_LAZY = {
    "DecodeStats": ".decode.stats",
    "Progress": ".decode.stats",
    "MethodConfig": ".decode.methods",
    "parse_method": ".decode.methods",
    "LoadedModel": ".model.loading",
    "load_model": ".model.loading",
    "RewriteResult": ".rewriting.result",
    "rewrite": ".rewriting.rewrite",
    "partial_text": ".rewriting.rewrite",
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
    "DecodeStats",
    "SpecEditError",
    "TokenizerMismatchError",
    "UnsupportedModelError",
    "default_model",
    "load_model",
    "parse_method",
    "partial_text",
    "rewrite",
]
