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

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


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
        logits = logits.detach().to("cpu", torch.float64)
        # Scaled down from the largest logit: however small the temperature (an API takes any
        # above 0, such as 1e-320), the scores are 0 and below, never inf - inf = nan; p then
        # tends to greedy's one-hot, as it should.
        probs = torch.softmax((logits - logits.max()) / self.temperature, -1)
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


@dataclass
class SampledAcceptance:
    """The decoding loop's rule for temperature > 0: each draft token in turn is kept with
    probability p(token), else a token is drawn from the residual and the pass ends there;
    when every guess is kept, the pass's last row gives one more sampled token."""

    sampler: Sampler

    def judge(self, logits: torch.Tensor, draft: Sequence[int]) -> tuple[int, int]:
        for i, guess in enumerate(draft):
            token = accept_or_resample(self.sampler.distribution(logits[i]), guess, self.sampler)
            if token is not None:
                return i, token
        return len(draft), self.sampler.draw(self.sampler.distribution(logits[len(draft)]))
