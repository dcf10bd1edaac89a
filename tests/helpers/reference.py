"""Plain greedy decoding, written apart from the engine's decoding loop on purpose: the
exactness tests compare the engine's output against this independent implementation."""

from __future__ import annotations

from collections.abc import Sequence

from engine.decode.loop import DecodeResult
from engine.decode.runner import ModelRunner
from engine.decode.stats import DecodeStats
from engine.decode.stopping import StopCondition


def greedy_reference(runner: ModelRunner, prompt: Sequence[int], stop: StopCondition,
                     max_new_tokens: int) -> DecodeResult:
    """One token per pass with a KV cache: the argmax after the prompt and each output token."""
    prompt = list(prompt)
    output: list[int] = []
    passes_before = runner.forward_passes
    finish = "length"
    while len(output) < max_new_tokens:
        (token,) = runner.predict(prompt + output)
        output.append(token)
        end = stop.first_stop(output, len(output) - 1)
        if end is not None:
            del output[end:]
            finish = "stop"
            break
    stats = DecodeStats(prompt_tokens=len(prompt), output_tokens=len(output),
                        forward_passes=runner.forward_passes - passes_before)
    return DecodeResult(output, stats, finish)
