"""The `hf-prompt-lookup` baseline: transformers' own `generate(prompt_lookup_num_tokens=...)`.

What a user would otherwise pick, measured on the same prompt, stop rule and context checks
as `engine.rewrite`. It lives in the benchmark, not in the rewrite path: `generate` reports
no progress and its forward passes can only be counted with a hook on the model.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from engine.contract import RewriteCancelled
from engine.decode.loop import DecodeResult, StopPredicate
from engine.decode.runner import synchronize
from engine.decode.stats import DecodeStats
from engine.model.loading import LoadedModel
from engine.rewriting.rewrite import RewriteResult, finish_rewrite, prepare_rewrite

from .methods import HF_PROMPT_LOOKUP

# Draft tokens per lookup, as transformers' documentation suggests for input-grounded tasks.
LOOKUP_TOKENS = 10


class PassCounter:
    """Counts a model's forward passes inside a `with` block (generate does not report them)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.count = 0
        self._handle: Any = None

    def __enter__(self) -> PassCounter:
        def hook(*_: Any) -> None:
            self.count += 1

        self._handle = self.model.register_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()


def rewrite_with_hf_prompt_lookup(loaded: LoadedModel, code: str, instruction: str, *,
                                  language: str | None = None, context_before: str = "",
                                  context_after: str = "", max_new_tokens: int | None = None,
                                  should_stop: StopPredicate | None = None) -> RewriteResult:
    """`engine.rewrite` with transformers' prompt lookup decoding in place of our loop."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    prepared = prepare_rewrite(loaded, code, instruction, language=language,
                               context_before=context_before, context_after=context_after,
                               max_new_tokens=max_new_tokens)
    prompt = prepared.prompt
    prompt_len = len(prompt.prompt_ids)

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
            if should_stop is not None and should_stop():
                raise RewriteCancelled()
            generated = input_ids[0, prompt_len:].tolist()
            done = prompt.stop.first_stop(generated, 0) is not None
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool,
                              device=input_ids.device)

    model = loaded.model
    started = time.perf_counter()
    with PassCounter(model) as counter:
        out = model.generate(
            torch.tensor([prompt.prompt_ids], device=loaded.device),
            max_new_tokens=prepared.max_new_tokens,
            do_sample=False,
            prompt_lookup_num_tokens=LOOKUP_TOKENS,
            stopping_criteria=StoppingCriteriaList([_Stop()]),
            eos_token_id=sorted(prompt.stop.stop_tokens.ids) or None,
            pad_token_id=loaded.tokenizer.pad_token_id or loaded.tokenizer.eos_token_id,
        )
    synchronize(loaded.device)
    generated = out[0, prompt_len:].tolist()
    end = prompt.stop.first_stop(generated, 0)
    finish = "stop" if end is not None else "length"
    tokens = generated[:end] if end is not None else generated[:prepared.max_new_tokens]
    stats = DecodeStats(prompt_tokens=prompt_len, output_tokens=len(tokens),
                        forward_passes=counter.count,
                        wall_seconds=time.perf_counter() - started)
    # No greedy estimate: generate's passes are not timed one by one.
    return finish_rewrite(loaded, prepared, HF_PROMPT_LOOKUP, DecodeResult(tokens, stats, finish))
