"""Load a GGUF file onto the native decoder: the model and its tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .decoder import NativeDecoder
from .reader import GGUFFile
from .tokenizer import load_tokenizer


def eos_token_ids(file: GGUFFile, tokenizer: Any) -> tuple[int, ...]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    return tuple(sorted(ids | set(file.eos_token_ids)))


def load_native(path: Path, storage: str) -> tuple[NativeDecoder, Any]:
    """(decoder, tokenizer) for the GGUF at `path`, weights held as `storage` (gguf: the
    file's own blocks; float32 or bfloat16: dense copies made here)."""
    file = GGUFFile(path)
    tokenizer = load_tokenizer(path)
    return NativeDecoder(file, storage, eos_token_ids(file, tokenizer)), tokenizer
