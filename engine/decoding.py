"""The verifying loop: one forward pass checks a proposal, greedy decides what stays.

Greedy (temperature 0) is the contract: whatever the proposer guesses, the tokens kept are
exactly those that one-token-at-a-time greedy decoding would produce, because a draft token
is kept only where it equals the model's argmax after the tokens before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .contract import RewriteCancelled
from .proposers import NoProposer, Proposer

if TYPE_CHECKING:  # annotations only: the prompt and Progress stay importable without torch
    from .runner import ModelRunner


class StopCondition(Protocol):
    def first_stop(self, tokens: Sequence[int], start: int) -> int | None:
        """Length of the output if it ends within tokens[start:], else None.

        A stop token (EOS) is excluded; a text stop (a closing fence) keeps the token that
        completes it so the text can be cut at the right character.
        """
        ...


@dataclass
class StopTokens:
    """Stop at any of these token ids (EOS, end of turn)."""

    ids: frozenset[int] = field(default_factory=frozenset)

    def first_stop(self, tokens: Sequence[int], start: int) -> int | None:
        for i in range(start, len(tokens)):
            if tokens[i] in self.ids:
                return i
        return None


@dataclass
class Progress:
    """Reported after each forward pass."""

    output_tokens: int
    forward_passes: int
    elapsed: float
    covered: float | None = None  # share of the original region reached, when drafting from it
    # The output token ids so far, for callers that show the text as it grows. The loop's own
    # list, not a copy (copying every pass of a long output would cost): read it, or copy it,
    # during the call only. Left out of repr and equality so existing callers see no change.
    tokens: Sequence[int] = field(default=(), repr=False, compare=False)


@dataclass
class DecodeStats:
    prompt_tokens: int = 0
    output_tokens: int = 0
    forward_passes: int = 0
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    draft_forward_passes: int = 0
    verification_steps: int = 0  # passes that checked a non-empty draft
    wall_seconds: float = 0.0
    # Seconds of each pass that fed at most two tokens: the cost of a plain greedy step.
    single_pass_seconds: list[float] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.wall_seconds if self.wall_seconds > 0 else 0.0


@dataclass
class DecodeResult:
    tokens: list[int]
    stats: DecodeStats
    finish_reason: str  # "stop" (EOS or fence) or "length" (max_new_tokens reached)


ProgressCallback = Callable[[Progress], None]
StopPredicate = Callable[[], bool]


def verify_loop(
    runner: ModelRunner,
    prompt: Sequence[int],
    proposer: Proposer | None,
    stop: StopCondition,
    max_new_tokens: int,
    *,
    on_progress: ProgressCallback | None = None,
    should_stop: StopPredicate | None = None,
) -> DecodeResult:
    """Decode greedily, letting `proposer` guess ahead; every guess is verified in one pass."""
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
        # A draft may cover every token still wanted: the target's own token after a fully
        # accepted one is simply cut off below, and no pass goes without a proposal.
        room = max_new_tokens - len(output)
        draft = proposer.propose(output, room)[:room]
        fed_before = runner.tokens_fed
        pass_started = time.perf_counter()
        predicted = runner.predict(prompt + output, draft)
        if runner.tokens_fed - fed_before <= 2:
            stats.single_pass_seconds.append(time.perf_counter() - pass_started)
        accepted = 0
        while accepted < len(draft) and draft[accepted] == predicted[accepted]:
            accepted += 1
        proposer.feedback(len(draft), accepted)
        stats.drafted_tokens += len(draft)
        stats.verification_steps += bool(draft)
        stats.accepted_tokens += accepted
        start = len(output)
        output.extend(draft[:accepted])
        output.append(predicted[accepted])
        end = stop.first_stop(output, start)
        if end is not None:
            del output[end:]
            finish = "stop"
            break
        if on_progress is not None:
            on_progress(Progress(len(output), runner.forward_passes - passes_before,
                                 time.perf_counter() - started,
                                 getattr(proposer, "covered", None), tokens=output))
    del output[max_new_tokens:]
    stats.output_tokens = len(output)
    stats.forward_passes = runner.forward_passes - passes_before
    stats.draft_forward_passes = getattr(proposer, "forward_passes", 0)
    stats.wall_seconds = time.perf_counter() - started
    return DecodeResult(output, stats, finish)


def greedy_reference(
    runner: ModelRunner,
    prompt: Sequence[int],
    stop: StopCondition,
    max_new_tokens: int,
    *,
    on_progress: ProgressCallback | None = None,
    should_stop: StopPredicate | None = None,
) -> DecodeResult:
    """Plain greedy decoding, one token per pass with a KV cache: the reference output.

    Written separately from `verify_loop` on purpose, so that tests compare the speculative
    loop against an independent implementation.
    """
    prompt = list(prompt)
    stats = DecodeStats(prompt_tokens=len(prompt))
    output: list[int] = []
    finish = "length"
    started = time.perf_counter()
    passes_before = runner.forward_passes
    while len(output) < max_new_tokens:
        if should_stop is not None and should_stop():
            raise RewriteCancelled()
        pass_started = time.perf_counter()
        (token,) = runner.predict(prompt + output)
        if output:
            stats.single_pass_seconds.append(time.perf_counter() - pass_started)
        output.append(token)
        end = stop.first_stop(output, len(output) - 1)
        if end is not None:
            del output[end:]
            finish = "stop"
            break
        if on_progress is not None:
            on_progress(Progress(len(output), runner.forward_passes - passes_before,
                                 time.perf_counter() - started, tokens=output))
    stats.output_tokens = len(output)
    stats.forward_passes = runner.forward_passes - passes_before
    stats.wall_seconds = time.perf_counter() - started
    return DecodeResult(output, stats, finish)
