"""`specedit bench-stream`'s measurement, through a real server over stdio, with the tiny model.

Only the order of the times is checked (never a threshold): the first partial result comes
no later than the last, the last no later than the response, and the last text is the
rewrite the response's edit makes.
"""

from __future__ import annotations

from typing import Any

from engine.bench.stream import markdown, measure
from tests.helpers.lsp import SAMPLE


def test_measure_streams_and_orders_the_times(server_settings: dict[str, Any]):
    settings = {**server_settings, "method": "greedy", "maxNewTokens": 60}
    (timing,) = measure(SAMPLE, "Add comments", settings, language="python", runs=1)
    assert timing.partials >= 2  # one while decoding at least, then the final state
    assert 0 < timing.first_partial_s <= timing.last_partial_s <= timing.response_s
    assert timing.server_first_s <= timing.server_last_s
    assert timing.last_text_is_rewrite
    assert timing.output_tokens > 0 and timing.forward_passes >= timing.output_tokens
    table = markdown([timing])
    assert table.count("\n") == 3 and "| 1 |" in table
