"""Speculative sampling with a one-point draft: the sampled output's distribution is exactly
plain sampling's, whatever the draft.

The draft (a prediction, or tokens looked up in the prompt) is a deterministic guess, so its
proposal distribution q puts all its mass on the guessed token x. Speculative sampling's rule
(Leviathan et al. 2023; Chen et al. 2023) then reads: keep x with probability min(1, p(x)/q(x))
= p(x); on a rejection draw from the residual max(0, p - q), which is p with x removed and
renormalised. Over both branches each token y is produced with probability p(y), so the output
is distributed as if every token had been sampled from p one pass at a time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .contract import RewriteCancelled
from .decoding import DecodeResult, DecodeStats, StopCondition, StopPredicate
from .proposers import NoProposer, Proposer
from .runner import ModelRunner


@dataclass
class Sampler:
    """The target distribution (temperature, then top-p) and a seeded source of randomness."""

    temperature: float
    top_p: float = 1.0
    seed: int | None = None
    generator: torch.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("a Sampler needs temperature > 0; temperature 0 is greedy decoding")
        self.generator = torch.Generator(device="cpu")
        if self.seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(self.seed)

    def distribution(self, logits: torch.Tensor) -> torch.Tensor:
        """p: softmax(logits / temperature), restricted to the top-p nucleus and renormalised."""
        probs = torch.softmax(logits.detach().to("cpu", torch.float64) / self.temperature, -1)
        if self.top_p < 1.0:
            ordered, order = torch.sort(probs, descending=True)
            # Keep the smallest head whose mass reaches top_p: a token stays while the mass
            # before it is still short of top_p (so the most likely token always stays).
            keep = (torch.cumsum(ordered, -1) - ordered) < self.top_p
            filtered = torch.zeros_like(probs)
            filtered[order[keep]] = ordered[keep]
            probs = filtered / filtered.sum()
        return probs

    def uniform(self) -> float:
        return float(torch.rand((), generator=self.generator, dtype=torch.float64))

    def draw(self, weights: torch.Tensor) -> int:
        """One token with probability proportional to `weights` (need not sum to 1)."""
        return int(torch.multinomial(weights, 1, generator=self.generator))


def accept_or_resample(p: torch.Tensor, guess: int, sampler: Sampler) -> int | None:
    """None when the guessed token is kept (probability p[guess]); else a token drawn from p
    with the guess removed."""
    if sampler.uniform() < float(p[guess]):
        return None
    residual = p.clone()
    residual[guess] = 0.0
    if float(residual.sum()) <= 0.0:  # p was all on the guess: cannot happen after u < 1
        return guess
    return sampler.draw(residual)


def sample_loop(
    runner: ModelRunner,
    prompt: Sequence[int],
    proposer: Proposer | None,
    stop: StopCondition,
    max_new_tokens: int,
    sampler: Sampler,
    *,
    should_stop: StopPredicate | None = None,
) -> DecodeResult:
    """Sample up to `max_new_tokens`, verifying `proposer`'s guesses one pass per proposal.

    The same shape as decoding.verify_loop, with greedy's equality test replaced by
    speculative sampling's accept/reject step.
    """
    proposer = proposer or NoProposer()
    prompt = list(prompt)
    stats = DecodeStats(prompt_tokens=len(prompt))
    output: list[int] = []
    finish = "length"
    started = time.perf_counter()
    passes_before = runner.forward_passes
    while len(output) < max_new_tokens:
        if should_stop is not None and should_stop():
            raise RewriteCancelled()
        room = max_new_tokens - len(output)
        draft = proposer.propose(output, room)[:room]
        logits = runner.logits(prompt + output, draft)
        accepted = 0
        token: int | None = None
        for i, guess in enumerate(draft):
            token = accept_or_resample(sampler.distribution(logits[i]), guess, sampler)
            if token is not None:
                break
            accepted += 1
        if token is None:  # every guess kept: the pass still gives one more token
            token = sampler.draw(sampler.distribution(logits[len(draft)]))
        proposer.feedback(len(draft), accepted)
        stats.drafted_tokens += len(draft)
        stats.verification_steps += bool(draft)
        stats.accepted_tokens += accepted
        start = len(output)
        output.extend(draft[:accepted])
        output.append(token)
        end = stop.first_stop(output, start)
        if end is not None:
            del output[end:]
            finish = "stop"
            break
    del output[max_new_tokens:]
    stats.output_tokens = len(output)
    stats.forward_passes = runner.forward_passes - passes_before
    stats.wall_seconds = time.perf_counter() - started
    return DecodeResult(output, stats, finish)
