"""The server comparison's table: paired ratios against our in-process run of the same task.

(The servers themselves, vLLM above all, run only in the optional benchmark; this checks the
arithmetic its table reports.)"""

from __future__ import annotations

from engine.bench.servers import Row, summary


def _row(condition: str, task: str, server: str, method: str, seconds: float,
         same: bool = True) -> Row:
    return Row(condition, task, server, method, "", 10, "", seconds, same)


def test_paired_ratio_and_identity_per_condition() -> None:
    rows = [
        _row("quiet", "a", "", "in-process:greedy", 20.0),
        _row("quiet", "b", "", "in-process:greedy", 40.0),
        _row("quiet", "a", "vllm-ngram", "in-process:speculative", 2.0),
        _row("quiet", "a", "vllm-ngram", "vllm-ngram", 3.0),
        _row("quiet", "b", "vllm-ngram", "in-process:speculative", 4.0),
        _row("quiet", "b", "vllm-ngram", "vllm-ngram", 2.0, same=False),
        _row("busy", "a", "vllm-ngram", "in-process:speculative", 5.0),
        _row("busy", "a", "vllm-ngram", "vllm-ngram", 10.0),
    ]
    table = summary(rows, {"vllm-suffix": "the server exited with 1"})
    lines = table.splitlines()
    assert "| quiet | in-process:greedy | 2 | 60.0 | | 2/2 |" in lines
    assert "| quiet | ours (paired with vllm-ngram) | 2 | 6.0 | 1.00 | 2/2 |" in lines
    # Ratios 1.5 and 0.5: the median is 1.0; one text differs from greedy's.
    assert "| quiet | vllm-ngram | 2 | 5.0 | 1.00 | 1/2 |" in lines
    assert "| busy | vllm-ngram | 1 | 10.0 | 2.00 | 1/1 |" in lines
    # Quiet rows come before busy ones, and a skipped server says why.
    assert lines.index("| busy | vllm-ngram | 1 | 10.0 | 2.00 | 1/1 |") > lines.index(
        "| quiet | vllm-ngram | 2 | 5.0 | 1.00 | 1/2 |")
    assert "vllm-suffix skipped: the server exited with 1" in table
