"""A GGUF file's tokenizer and chat template, converted by transformers once and kept.

transformers builds a fast tokenizer from the vocabulary and merges in the file's metadata,
which takes seconds for a 150k-token vocabulary; the result is saved under the cache, keyed
by the file's path, size and modification time, and later loads read that copy.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from engine.model.catalog import cache_root


def _key(path: Path) -> str:
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    folder = cache_root() / "tokenizers" / f"{path.stem}-{_key(path)}"
    if (folder / "tokenizer_config.json").is_file():
        try:
            return AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError):
            shutil.rmtree(folder, ignore_errors=True)  # a broken copy: convert again
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=".tokenizer-", dir=folder.parent))
        tokenizer.save_pretrained(temporary)
        temporary.replace(folder)
    except OSError:
        pass  # a read-only or raced cache only costs a conversion next time
    return tokenizer
