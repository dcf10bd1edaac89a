"""How long a draft of the original code should be, given what a pass costs.

A pass feeding n draft tokens costs t(1 + n) = a + b*(1 + n) (cost_curve.py). Draft tokens
are modelled as accepted one after another with probability q until the first rejection,
so a draft of n yields E(n) = 1 + q(1 - q^n)/(1 - q) tokens (the target's own token
included). q is estimated from this request's drafts: accepted tokens against rejections,
on top of a prior that trusts the original code (a rewrite keeps most of it).

- A later pass: n maximises E(n) / t(1 + n), the long-run tokens per second of repeating
  it. Of the lengths within `NEAR_BEST` of the best rate the longest is taken, since real
  acceptance is burstier than the model's (whole regions are unchanged).
- The first pass also prefills the prompt, a cost paid whatever the draft, so its draft is
  sized at the margin: the k-th draft token is worth its b seconds when q^k times the time
  a token costs afterwards (1 / the best later rate) still exceeds b.
Where verifying the whole remainder adds at most FREE_SHARE of a pass and acceptance is
better than even (or b = 0: verified tokens are free) the draft is the whole remainder.
The policy only shortens drafts; the verifying loop keeps the output exactly greedy's
whatever it proposes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PassCostCurve:
    """t(n) = fixed_seconds + seconds_per_token * n for a pass feeding n tokens
    (measured by cost_curve.py; defined here so that the policy needs no torch).

    single_seconds: a one-token pass when it is off that line (None: on it). On a CPU a
    one-token pass can take a cheaper matrix-vector path than a pass of a few tokens, so a
    short draft may cost a whole extra one-token pass before it saves anything.
    """

    fixed_seconds: float
    seconds_per_token: float
    source: str = "measured"  # measured, disk, declared, environment
    single_seconds: float | None = None

    def seconds(self, tokens: int) -> float:
        if tokens <= 1 and self.single_seconds is not None:
            return self.single_seconds
        return self.fixed_seconds + self.seconds_per_token * tokens

    @property
    def token_ratio(self) -> float:
        """b/a: what one more verified token costs, in one-token-pass overheads."""
        return self.seconds_per_token / self.fixed_seconds if self.fixed_seconds > 0 else 0.0

# Of the draft lengths whose rate is at least this share of the best, the longest wins.
NEAR_BEST = 0.98
# Verifying the whole remainder is taken outright when it adds at most this share of a
# pass's fixed cost: a shorter draft risks a whole extra pass to save less than that.
FREE_SHARE = 0.25


@dataclass(frozen=True)
class AcceptancePrior:
    """What is believed before a request's first verdict: as if `tokens` draft tokens had
    been accepted against `rejections` rejections. The default, 0.99 per token (an edit per
    ~100 tokens), weighs as ten tokens: a rejection at once brings q down to 0.9."""

    tokens: float = 9.9
    rejections: float = 0.1


# Drafts after a weak match (a few tokens that may agree by chance) are another population:
# even odds, worth two verdicts.
WEAK_PRIOR = AcceptancePrior(1.0, 1.0)


def expected_tokens(n: int, q: float) -> float:
    """Tokens one pass yields with a draft of n, each accepted with probability q in turn."""
    if q >= 1.0:
        return 1.0 + n
    return 1.0 + q * (1.0 - q**n) / (1.0 - q)


def _candidates(limit: int) -> list[int]:
    """0..64 one by one, then steps of about 1/16 up to `limit` (which is included)."""
    lengths = list(range(min(limit, 64) + 1))
    n = 64
    while n < limit:
        n = min(limit, n + max(1, n // 16))
        lengths.append(n)
    return lengths


class DraftLengthPolicy:
    """Sizes drafts of the original from the pass-cost curve and the acceptance seen so far
    in one request (one policy per request; `weak` sizes drafts after weak matches)."""

    def __init__(self, curve: PassCostCurve, prior: AcceptancePrior | None = None,
                 weak_prior: AcceptancePrior | None = WEAK_PRIOR) -> None:
        self.curve = curve
        self.prior = prior or AcceptancePrior()
        self.accepted = 0
        self.rejections = 0
        # The same curve with its own acceptance, for drafts after weak matches.
        self.weak = (DraftLengthPolicy(curve, weak_prior, None) if weak_prior is not None
                     else self)

    @property
    def acceptance(self) -> float:
        """The per-token acceptance probability q estimated so far."""
        tokens = self.prior.tokens + self.accepted
        return tokens / (tokens + self.prior.rejections + self.rejections)

    def record(self, proposed: int, accepted: int) -> None:
        """A verdict on a draft this policy sized."""
        if proposed == 0:
            return
        self.accepted += accepted
        self.rejections += accepted < proposed

    def _rate(self, n: int, q: float) -> float:
        return expected_tokens(n, q) / self.curve.seconds(1 + n)

    def best_later(self, remainder: int) -> tuple[int, float]:
        """(draft length, tokens per second) for a pass after the first."""
        q = self.acceptance
        rates = [(n, self._rate(n, q)) for n in _candidates(remainder)]
        best = max(rate for _, rate in rates)
        return max((n, rate) for n, rate in rates if rate >= NEAR_BEST * best)

    def choose(self, remainder: int, first: bool = False) -> int:
        """Draft length (0..remainder) for a draft that could run `remainder` tokens."""
        if remainder <= 0:
            return 0
        if (self.curve.seconds_per_token * remainder <= FREE_SHARE * self.curve.fixed_seconds
                and (self.acceptance > 0.5 or self.curve.seconds_per_token <= 0)):
            return remainder
        later, rate = self.best_later(remainder)
        if not first:
            return later
        # The k-th token is worth drafting while q^k / rate >= b.
        q = self.acceptance
        worth = self.curve.seconds_per_token * rate
        if q >= 1.0:
            return remainder
        margin = 0 if worth >= q else math.floor(math.log(worth) / math.log(q))
        return min(remainder, max(later, margin))
