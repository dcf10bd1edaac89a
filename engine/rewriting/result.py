"""What a rewrite returns, in process or from an endpoint (imports no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.decode.stats import DecodeStats


@dataclass
class RewriteResult:
    text: str
    method: str
    model: str
    stats: DecodeStats
    finish_reason: str  # "stop" or "length"
    output_ids: list[int] = field(repr=False, default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "method": self.method, "model": self.model,
                "stats": self.stats.to_json(), "finish_reason": self.finish_reason}
