"""What a rewrite returns, in process or from an endpoint (imports no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RewriteStats:
    forward_passes: int
    prompt_tokens: int
    output_tokens: int
    drafted_tokens: int
    accepted_tokens: int
    wall_seconds: float
    tokens_per_second: float
    draft_forward_passes: int = 0
    # Greedy's time for the same output, estimated from this run's one-token passes.
    estimated_greedy_seconds: float | None = None
    estimated_speedup: float | None = None


@dataclass
class RewriteResult:
    text: str
    method: str
    model: str
    stats: RewriteStats
    finish_reason: str  # "stop" or "length"
    output_ids: list[int] = field(repr=False, default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("output_ids")
        return data
