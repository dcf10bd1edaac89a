"""The methods a benchmark runs: every rewrite method, and two baselines of the lab's own.

- `hf-prompt-lookup`: transformers' own `generate(prompt_lookup_num_tokens=10)`
  (hf_prompt_lookup.py), never a way to rewrite (it has no progress, and its passes need a
  hook to count).
- `speculative-original[:N]`: speculative edits drafting from the original code alone,
  without n-gram lookup where the original has no match; it measures what the lookup gains.
"""

from __future__ import annotations

import dataclasses

from engine.contract import METHODS, InvalidRequestError
from engine.decode.methods import MethodConfig, parse_method

HF_PROMPT_LOOKUP = "hf-prompt-lookup"
ORIGINAL_ONLY = "speculative-original"
BENCH_METHODS = (*METHODS, HF_PROMPT_LOOKUP, ORIGINAL_ONLY)


def parse_bench_method(text: str) -> MethodConfig:
    """A method as `--methods` spells it. `speculative:N` caps every draft at N tokens: it
    trades a few more passes over unchanged code for less work thrown away when the model
    leaves the original early in a long draft."""
    name, colon, cap = text.strip().partition(":")
    if name == HF_PROMPT_LOOKUP and not colon:
        return MethodConfig(HF_PROMPT_LOOKUP)
    if name == ORIGINAL_ONLY:
        return dataclasses.replace(parse_method(f"speculative{colon}{cap}"),
                                   lookup_fallback=False)
    if name not in METHODS:
        raise InvalidRequestError(f"unknown method {text!r}; use one of "
                                  f"{', '.join(BENCH_METHODS)}", field="method")
    return parse_method(text)
