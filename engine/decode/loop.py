"""The one decoding loop: a proposer guesses, one forward pass checks, a rule decides.

Every pass feeds the output so far plus the proposer's draft and gets the model's logits
after each draft token. The acceptance rule is the loop's one variation:
- `GreedyAcceptance` (temperature 0, the rewrite contract): a draft token is kept only where
  it equals the model's argmax after the tokens before it, so the tokens kept are exactly
  those one-token-at-a-time greedy decoding would produce, whatever the proposer guessed.
- `SampledAcceptance` (sampling.py): speculative sampling's accept/reject step, so the output
  is distributed exactly as plain sampling's.
Without a proposer (or with one that proposes nothing) the loop is plain decoding, one token
per pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from engine.contract import RewriteCancelled

from .proposers import NoProposer, Proposer
from .stats import DecodeStats, Progress
from .stopping import StopCondition

if TYPE_CHECKING:  # annotations only: the loop's callers may not have torch loaded yet
    import torch

    from .runner import ModelRunner


@dataclass
class DecodeResult:
    tokens: list[int]
    stats: DecodeStats
    finish_reason: str  # "stop" (a stop token or text) or "length" (max_new_tokens reached)


ProgressCallback = Callable[[Progress], None]
StopPredicate = Callable[[], bool]


class AcceptanceRule(Protocol):
    def judge(self, logits: torch.Tensor, draft: Sequence[int]) -> tuple[int, int]:
        """(draft tokens kept, the token that follows them) from the pass's logits: row i is
        the distribution after the draft's first i tokens (len(draft) + 1 rows)."""
        ...


class GreedyAcceptance:
    """Keep the draft's longest prefix that agrees with the argmax, then the argmax itself."""

    def judge(self, logits: torch.Tensor, draft: Sequence[int]) -> tuple[int, int]:
        predicted = logits.argmax(dim=-1).tolist()
        accepted = 0
        while accepted < len(draft) and draft[accepted] == predicted[accepted]:
            accepted += 1
        return accepted, predicted[accepted]


GREEDY = GreedyAcceptance()


def decode(
    runner: ModelRunner,
    prompt: Sequence[int],
    proposer: Proposer | None,
    stop: StopCondition,
    max_new_tokens: int,
    *,
    rule: AcceptanceRule = GREEDY,
    on_progress: ProgressCallback | None = None,
    should_stop: StopPredicate | None = None,
) -> DecodeResult:
    """Decode up to `max_new_tokens` after `prompt`, verifying `proposer`'s guesses one pass
    per proposal. `should_stop` is polled before every pass (True raises RewriteCancelled)."""
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
        # A draft may cover every token still wanted: the model's own token after a fully
        # accepted one is simply cut off below, and no pass goes without a proposal.
        room = max_new_tokens - len(output)
        draft = proposer.propose(output, room)[:room]
        fed_before = runner.tokens_fed
        pass_started = time.perf_counter()
        logits = runner.logits(prompt + output, draft)
        accepted, token = rule.judge(logits, draft)
        if runner.tokens_fed - fed_before <= 2 and output:
            stats.single_pass_seconds.append(time.perf_counter() - pass_started)
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
        if on_progress is not None:
            on_progress(Progress(len(output), runner.forward_passes - passes_before,
                                 time.perf_counter() - started, proposer.covered,
                                 tokens=output))
    del output[max_new_tokens:]
    stats.output_tokens = len(output)
    stats.forward_passes = runner.forward_passes - passes_before
    stats.draft_forward_passes = proposer.forward_passes
    stats.wall_seconds = time.perf_counter() - started
    return DecodeResult(output, stats, finish)
