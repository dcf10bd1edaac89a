"""Build the small random-weight model the VS Code end-to-end test rewrites with.

Usage: python -m tests.e2e.vscode.make_model OUT_DIR   (from the repository root)

A Llama with 4 layers and hidden size 256 (about 10 MB) and the tiny trained tokenizer from
tests/helpers/tiny_models.py. It is small enough to load in a second, yet slow enough per token on a
CPU (tens of tokens per second) that a long rewrite can be cancelled while it runs. Its output
is arbitrary text, but deterministic: the test compares the editor's result with what the
engine's CLI produces for the same selection, instruction and settings.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers.tiny_models import chat_tokenizer, tiny_model


def main() -> int:
    out = Path(sys.argv[1])
    if (out / "config.json").exists():
        print(out)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    tok = chat_tokenizer()
    model = tiny_model("llama", seed=0, vocab_size=len(tok), layers=4, hidden=256)
    model.config.eos_token_id = tok.eos_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
