"""A deterministic stand-in model whose greedy output is a given token sequence.

Used only to count forward passes: a real model's greedy output cannot be chosen, and the
efficiency bounds are stated for a known output. It follows the transformers calling
convention (input_ids, past_key_values, use_cache, logits_to_keep) so the engine's real
runner and verifying loop drive it unchanged. The argmax at absolute position t is
script[t - prompt_len + 1]: the output does not depend on what was drafted, exactly as a
real model's greedy output does not. It declares its pass-cost curve (FREE_TOKENS unless
told otherwise), so the engine never times it and the tests choose the regime.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from engine.decode.draft_length import PassCostCurve
from engine.model.pass_cost import DECLARED_ATTRIBUTE

# Verified tokens cost nothing: drafts run to the end of the original, as on a fast GPU.
FREE_TOKENS = PassCostCurve(1.0, 0.0, "declared")


class ScriptedCache:
    def __init__(self) -> None:
        self.length = 0

    def get_seq_length(self) -> int:
        return self.length

    def crop(self, n: int) -> None:
        if n > 0:
            raise ValueError("crop takes a negative count, as transformers 5 does")
        self.length += n


class ScriptedModel(torch.nn.Module):
    def __init__(self, prompt_len: int, script: list[int], vocab_size: int,
                 pass_cost: PassCostCurve = FREE_TOKENS) -> None:
        super().__init__()
        setattr(self, DECLARED_ATTRIBUTE, pass_cost)
        self.prompt_len = prompt_len
        self.script = script
        self.vocab_size = vocab_size
        self.calls = 0
        self.tokens_seen = 0

    def forward(self, input_ids: torch.Tensor, past_key_values: ScriptedCache | None = None,
                use_cache: bool = True, logits_to_keep: int = 0, **_: object) -> SimpleNamespace:
        cache = past_key_values or ScriptedCache()
        n = input_ids.shape[1]
        first = cache.length
        cache.length += n
        self.calls += 1
        self.tokens_seen += n
        keep = logits_to_keep or n
        logits = torch.zeros(1, keep, self.vocab_size)
        for j, pos in enumerate(range(first + n - keep, first + n)):
            index = pos - self.prompt_len + 1
            if 0 <= index < len(self.script):
                logits[0, j, self.script[index]] = 1.0
        return SimpleNamespace(logits=logits, past_key_values=cache)


class PromptScriptedModel(ScriptedModel):
    """A ScriptedModel for many prompts: the first pass of each rewrite (no cache yet) picks
    the script of the longest known prompt its input starts with, so one stand-in model can
    answer each problem of an evaluation in its own way."""

    def __init__(self, scripts: dict[tuple[int, ...], list[int]], vocab_size: int) -> None:
        super().__init__(0, [], vocab_size)
        self.scripts = scripts
        # What LoadedModel.context_length reads.
        self.config = SimpleNamespace(max_position_embeddings=1 << 20)

    def forward(self, input_ids: torch.Tensor, past_key_values: ScriptedCache | None = None,
                **kwargs: object) -> SimpleNamespace:
        if past_key_values is None:
            ids = tuple(input_ids[0].tolist())
            known = [p for p in self.scripts if ids[: len(p)] == p]
            if not known:
                raise AssertionError("PromptScriptedModel: no script for this prompt")
            prompt = max(known, key=len)
            self.prompt_len, self.script = len(prompt), self.scripts[prompt]
        return super().forward(input_ids, past_key_values, **kwargs)
