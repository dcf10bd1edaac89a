"""Load a GGUF file onto the native decoder: the model and its tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .decoder import NativeDecoder
from .reader import GGUFFile
from .tokenizer import load_tokenizer


def eos_token_ids(file: GGUFFile, tokenizer: Any) -> tuple[int, ...]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    field = "tokenizer.ggml.eos_token_id"
    if field in file.reader.fields:
        from transformers.modeling_gguf_pytorch_utils import read_field

        ids.update(int(v) for v in read_field(file.reader, field))
    return tuple(sorted(ids))


def load_native(path: Path, storage: str) -> tuple[NativeDecoder, Any]:
    """(decoder, tokenizer) for the GGUF at `path`, weights held as `storage` (gguf: the
    file's own blocks; float32 or bfloat16: dense copies made here)."""
    file = GGUFFile(path)
    tokenizer = load_tokenizer(path)
    return NativeDecoder(file, storage, eos_token_ids(file, tokenizer)), tokenizer
