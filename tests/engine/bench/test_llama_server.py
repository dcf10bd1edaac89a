"""The llama-server benchmark's own logic (llama-server itself is never built in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bench.llama_server import Row, main, server_command, summary


def row(condition: str, task: str, server: str, method: str, seconds: float,
        tokens: int = 10) -> Row:
    return Row(condition, task, server, method, 100, tokens, "", "", "", seconds, True)


def test_summary_pairs_each_task_with_ours_and_counts_where_we_are_behind() -> None:
    rows = [row("quiet", "a", "", "ours:greedy", 9.0), row("quiet", "b", "", "ours:greedy", 9.0)]
    rows += [row("quiet", "a", "ngram-mod", "ours:speculative", 2.0),
             row("quiet", "a", "ngram-mod", "llama-server:ngram-mod", 6.0),
             row("quiet", "b", "ngram-mod", "ours:speculative", 4.0),
             row("quiet", "b", "ngram-mod", "llama-server:ngram-mod", 3.0)]
    table = summary(rows)
    line = next(x for x in table.splitlines() if "llama-server:ngram-mod" in x)
    # ratios 3.0 and 0.75: median 1.875, worst 0.75, one task more than 10% behind
    assert line == "| quiet | llama-server:ngram-mod | 2 | 9.0 | 6.0 | 1.88 | 0.75 | 1 | 20 |"
    assert "| quiet | ours:greedy | 2 | 18.0 |" in table


def test_server_command_names_the_speculative_type_and_threads_only_when_given() -> None:
    command = server_command(Path("/bin/llama-server"), Path("m.gguf"), 8013, "ngram-simple",
                             None)
    assert command[command.index("--spec-type") + 1] == "ngram-simple"
    assert "-t" not in command and command[command.index("--host") + 1] == "127.0.0.1"
    assert server_command(Path("s"), Path("m"), 1, "none", 2)[-4:] == ["-t", "2", "-tb", "2"]
    assert "--no-cache-prompt" in server_command(Path("s"), Path("m"), 1, "none", None,
                                                 "--no-cache-prompt")


def test_run_without_a_built_server_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="llama_server build"):
        main(["run", "--llama-server", str(tmp_path / "missing"), "--limit", "1"])
