"""Build the small model the VS Code end-to-end test rewrites with.

Usage: python -m tests.e2e.vscode.make_model OUT_DIR   (from the repository root)

A Llama with 4 layers and hidden size 256 (about 10 MB) and the tiny trained tokenizer from
tests/helpers/tiny_models.py. It is small enough to load in a second. Its context holds
MAX_POSITIONS tokens, far more than it decodes in the time the test takes to press Cancel, even
on a fast idle CPU: the test's long rewrites (maxNewTokens just under that) are still running
whenever the test cancels them, so the cancel test never races the model.

Its weights are set by hand so that its greedy output is known: every layer adds nothing to
the residual stream (o_proj and down_proj are zero), so the next token depends only on the
current one (a bigram table in the embeddings and the LM head). The table writes REPEATED_LINE
over and over, whatever the prompt. The review test needs a rewrite with two hunks; a region
that contains this line between two other lines gives exactly that (the random model this
replaces wrote arbitrary bytes without line breaks: one hunk only). The test still takes the
expected text from the engine's CLI, not from this docstring.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from tests.helpers.tiny_models import chat_tokenizer, tiny_config

REPEATED_LINE = "    return None\n"
MAX_POSITIONS = 32_768


def bigram_weights(model: torch.nn.Module, chain: list[int]) -> None:
    """Make `model` write `chain` in a loop: chain[i] -> chain[i+1], anything else -> chain[0]."""
    assert len(set(chain)) == len(chain), "a bigram table needs distinct tokens"
    hidden = model.config.hidden_size
    other = len(chain)  # the dimension every token outside the chain shares
    assert other < hidden
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.model.embed_tokens.weight
        emb.zero_()
        emb[:, other] = 1.0
        head = torch.zeros_like(model.lm_head.weight)
        for i, tok in enumerate(chain):
            emb[tok, other] = 0.0
            emb[tok, i] = 1.0
            if i + 1 < len(chain):
                head[chain[i + 1], i] = 1.0
        head[chain[0], other] = 1.0  # the last token is outside the chain's dimensions too
        model.lm_head.weight = torch.nn.Parameter(head)


def main() -> int:
    out = Path(sys.argv[1])
    if (out / "config.json").exists():
        print(out)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    tok = chat_tokenizer()
    config = tiny_config("llama", len(tok), layers=4, hidden=256, max_positions=MAX_POSITIONS)
    config.tie_word_embeddings = False  # the LM head gets its own table
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    chain = tok.encode(REPEATED_LINE, add_special_tokens=False)
    # The line break closes the loop: it is "anything else", which leads back to chain[0].
    assert chain[-1] == tok.encode("\n", add_special_tokens=False)[-1]
    bigram_weights(model, chain[:-1])
    # the last token of the line proper leads to the line break
    with torch.no_grad():
        model.lm_head.weight[chain[-1], len(chain) - 2] = 1.0
    model.config.eos_token_id = tok.eos_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
