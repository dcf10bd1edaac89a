"""Markdown summary of `specedit eval` rows: pass@1, speed and failure causes per setting.

`specedit eval` writes one for its own rows; to put several runs in one table (models,
instruction kinds, context sizes), merge their rows:

    python -m engine.bench.eval_report eval-a/rows.csv eval-b/rows.csv --out summary.md
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from .eval import CANNOT_RUN_HERE, FAILURE_CAUSES
from .run import read_rows

SETTING = ("model", "instruction", "prompt_format", "method", "selection")
NOTE = ("pass@1 is the greedy answer's (speculative edits give greedy's text): one "
        "deterministic sample per problem, where the CanItEdit harness samples 20 at "
        "temperature 0.2. *Runnable* leaves out problems whose tests cannot run here (a "
        "missing library, the reference solution failing here, or the network). "
        "`edit-outside-request` is a heuristic: a top-level block the reference leaves alone "
        "was changed.")


def _groups(rows: list[dict[str, str]]) -> dict[tuple[str, ...], list[dict[str, str]]]:
    groups: dict[tuple[str, ...], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in SETTING)].append(r)
    return groups


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _median(values: list[float], fmt: str) -> str:
    return format(statistics.median(values), fmt) if values else "-"


def pass_table(rows: list[dict[str, str]]) -> list[str]:
    lines = ["| model | instruction | prompt format | method | selection | problems | passed "
             "| pass@1 | runnable here | pass@1 of runnable | median tokens/s "
             "| median passes/token | rewrite seconds (sum) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for setting, group in _groups(rows).items():
        passed = sum(r["passed"] == "True" for r in group)
        runnable = [r for r in group if r["cause"] != CANNOT_RUN_HERE]
        rewrites = [r for r in group if r["finish_reason"]]
        speed = [float(r["tokens_per_second"]) for r in rewrites]
        per_token = [int(r["forward_passes"]) / max(int(r["output_tokens"]), 1) for r in rewrites]
        seconds = sum(float(r["wall_seconds"]) for r in group)
        lines.append(f"| {' | '.join(setting)} | {len(group)} | {passed} | "
                     f"{_pct(passed, len(group))} | {len(runnable)} | "
                     f"{_pct(passed, len(runnable))} | {_median(speed, '.1f')} | "
                     f"{_median(per_token, '.3f')} | {seconds:.1f} |")
    return lines


def cause_table(rows: list[dict[str, str]]) -> list[str]:
    lines = ["| model | instruction | prompt format | method | selection | "
             + " | ".join(FAILURE_CAUSES) + " |",
             "|---|---|---|---|---|" + "---|" * len(FAILURE_CAUSES)]
    for setting, group in _groups(rows).items():
        counts = [sum(r["cause"] == c for r in group) for c in FAILURE_CAUSES]
        lines.append(f"| {' | '.join(setting)} | " + " | ".join(map(str, counts)) + " |")
    return lines


def format_comparison(rows: list[dict[str, str]]) -> list[str]:
    """Prompt formats on the same problems: how many each passes that no other format does."""
    by_rest: dict[tuple[str, ...], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    problems: dict[tuple[str, ...], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in rows:
        rest = (r["model"], r["instruction"], r["method"], r["selection"])
        problems[rest][r["prompt_format"]].add(r["task"])
        if r["passed"] == "True":
            by_rest[rest][r["prompt_format"]].add(r["task"])
    lines = ["| model | instruction | method | selection | prompt format | problems in common "
             "| passed | passed by this format only |", "|---|---|---|---|---|---|---|---|"]
    for rest, formats in problems.items():
        if len(formats) < 2:
            continue
        common = set.intersection(*formats.values())
        for fmt in formats:
            mine = by_rest[rest][fmt] & common
            others = set().union(*(by_rest[rest][f] for f in formats if f != fmt)) & common
            lines.append(f"| {' | '.join(rest)} | {fmt} | {len(common)} | {len(mine)} | "
                         f"{len(mine - others)} |")
    return lines if len(lines) > 2 else []


def eval_summary(rows: list[dict[str, str]], title: str = "") -> str:
    parts = [title] if title else []
    parts += ["## pass@1 and speed", "", *pass_table(rows), "", "## Failures by cause", "",
              *cause_table(rows), ""]
    comparison = format_comparison(rows)
    if comparison:
        parts += ["## Prompt formats on the same problems", "", *comparison, ""]
    parts += [NOTE, ""]
    return "\n".join(parts)


def write_eval_report(csv_path: Path, out: Path, title: str = "") -> Path:
    path = out / "summary.md"
    path.write_text(eval_summary(read_rows(csv_path), title))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.eval_report",
                                     description="one summary of several specedit eval runs")
    parser.add_argument("rows", type=Path, nargs="+", help="rows.csv files of specedit eval")
    parser.add_argument("--out", type=Path, required=True, help="the Markdown file to write")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    rows = [row for path in args.rows for row in read_rows(path)]
    if not rows:
        parser.error("no rows in the given files")
    args.out.write_text(eval_summary(rows, args.title))
    print(f"wrote {args.out}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
