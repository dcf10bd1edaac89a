"""Synthetic tasks for machines where real weights cannot go (such as a GPU machine
without access to the model hub).

A random-weight model of a real shape writes its own greedy continuation of a prompt: that
is the "rewrite". The "original" is that text with edits applied (a line inserted, a line
deleted, tokens replaced, a region reordered), so speculative edits meet the acceptance
pattern of a real edit: long agreeing runs broken by places where the model writes its own.
Prompt lookup gets the original as its lookup text, as it would find it in a real prompt.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import torch

from engine.contract import InvalidRequestError
from engine.decode.loop import DecodeResult, decode
from engine.decode.methods import MethodConfig, build_proposer, parse_method
from engine.decode.runner import ModelRunner, synchronize
from engine.decode.stopping import StopTokens
from engine.model.pass_cost import model_pass_cost

from .lower_bound import lower_bound_passes
from .methods import BENCH_METHODS
from .run import Row, first_difference

# A random-weight model has no tokenizer and no second model: no transformers baseline on a
# text prompt, no draft model. Its default is what it can run.
SYNTHETIC_METHODS = ("greedy", "prompt-lookup", "speculative")

# Shapes of the Qwen2.5(-Coder) family; vocab as in the released checkpoints.
QWEN2_SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, vocab_size=1000),
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                 num_attention_heads=14, num_key_value_heads=2, vocab_size=151936),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                 num_attention_heads=12, num_key_value_heads=2, vocab_size=151936),
    "7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
               num_attention_heads=28, num_key_value_heads=4, vocab_size=152064),
}


def build_model(arch: str, size: str, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM, Qwen2Config

    if arch != "qwen2":
        raise ValueError("synthetic mode supports --arch qwen2")
    torch.manual_seed(0)
    config = Qwen2Config(max_position_embeddings=32768, initializer_range=0.02,
                         tie_word_embeddings=size in ("tiny", "0.5b", "1.5b"),
                         **QWEN2_SHAPES[size])
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


@dataclass
class SyntheticTask:
    id: str
    prompt: list[int]
    original: list[int]


def apply_edits(rng: random.Random, tokens: list[int], vocab: int) -> list[int]:
    """The rewrite with a real edit's shape undone: insert, delete, replace, reorder."""
    out = list(tokens)
    n = len(out)
    if n < 120:
        return out[: n // 2] + [rng.randrange(vocab) for _ in range(4)] + out[n // 2:]
    quarter = n // 4
    # Reorder: swap two adjacent short regions in the last quarter.
    a = rng.randrange(3 * quarter, n - 20)
    out[a:a + 20] = out[a + 10:a + 20] + out[a:a + 10]
    # Replace a few tokens in the third quarter.
    for i in rng.sample(range(2 * quarter, 3 * quarter), 3):
        out[i] = rng.randrange(vocab)
    # Delete a "line" the rewrite added (the original lacked it) in the second quarter.
    d = rng.randrange(quarter, 2 * quarter - 12)
    del out[d:d + 12]
    # Insert a "line" the rewrite removed, in the first quarter.
    i = rng.randrange(4, quarter)
    out[i:i] = [rng.randrange(vocab) for _ in range(12)]
    return out


def make_tasks(model: torch.nn.Module, count: int, prompt_len: int, new_tokens: int,
               vocab: int) -> tuple[list[SyntheticTask], dict[str, DecodeResult]]:
    tasks, references = [], {}
    for seed in range(count):
        rng = random.Random(seed)
        prompt = [rng.randrange(vocab) for _ in range(prompt_len)]
        reference = decode(ModelRunner(model), prompt, None, StopTokens(), new_tokens)
        task = SyntheticTask(f"synthetic_{seed}", prompt,
                             apply_edits(rng, reference.tokens, vocab))
        tasks.append(task)
        references[task.id] = reference
    return tasks, references


def parse_synthetic_method(name: str) -> MethodConfig:
    base = name.strip().partition(":")[0]
    if base in BENCH_METHODS and base not in SYNTHETIC_METHODS:
        raise InvalidRequestError(
            f"method {base!r} cannot be used in synthetic mode (random weights, no tokenizer, "
            f"no draft); use one of {', '.join(SYNTHETIC_METHODS)}", field="method")
    return parse_method(name, SYNTHETIC_METHODS)


def run_synthetic(model: torch.nn.Module, task: SyntheticTask, reference: list[int],
                  methods: list[str], new_tokens: int, name: str, dtype: str,
                  device: torch.device) -> list[Row]:
    rows = []
    bound = lower_bound_passes(task.original, reference)[0]
    for method in methods:
        runner = ModelRunner(model)
        synchronize(device)
        started = time.perf_counter()
        # Prompt lookup searches the original as it would find it in a real prompt.
        config = parse_synthetic_method(method)
        proposer = build_proposer(config, prompt=task.prompt, original=task.original,
                                  lookup=task.prompt + task.original,
                                  cost=model_pass_cost(model) if config.uses_pass_cost else None)
        result = decode(runner, task.prompt, proposer, StopTokens(), new_tokens)
        synchronize(device)
        wall = time.perf_counter() - started
        s = result.stats
        diff = first_difference(result.tokens, reference)
        rows.append(Row(
            task=task.id, method=method, model=name, dtype=dtype, device=str(device),
            prompt_tokens=len(task.prompt), output_tokens=s.output_tokens,
            forward_passes=s.forward_passes, drafted_tokens=s.drafted_tokens,
            accepted_tokens=s.accepted_tokens, wall_seconds=round(wall, 4),
            tokens_per_second=round(s.output_tokens / wall, 2) if wall > 0 else 0.0,
            identical_to_greedy=diff is None, first_difference="" if diff is None else diff,
            lower_bound_passes=bound, efficiency=round(s.forward_passes / bound, 3),
            correct="", finish_reason=result.finish_reason))
    return rows
