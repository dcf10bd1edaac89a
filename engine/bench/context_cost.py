"""What the context around a selection costs: the same rewrites at several context sizes, timed
side by side in one process.

`specedit eval` measures how often each context size gives the right edit, but its runs of
different sizes happen hours apart, often beside other work, so their seconds cannot break a
tie. Here every CanItEdit problem, in the editor's shape of request (the top-level blocks the
reference changes are the selection, N lines either side the context), is rewritten at every
N in turn, the order rotating from problem to problem so that a slow moment of a shared
machine falls on every size alike. An optional benchmark, never in CI:

    python -m engine.bench.context_cost --model qwen2.5-coder-1.5b-instruct \
        --context-lines 20,60 --limit 30 --out context-cost
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.contract import DEFAULT_METHOD, default_model
from engine.model.loading import LoadedModel
from engine.rewriting.rewrite import rewrite

from .run import CsvLog, read_rows, warm_up
from .selection import CHANGED, split_problem
from .tasks import INSTRUCTION_KINDS, Task, find_data_dir, load_canitedit, select


@dataclass
class ContextCostRow:
    task: str
    context_lines: int
    position: int  # 0 when this size ran first on this problem
    prompt_tokens: int
    output_tokens: int
    forward_passes: int
    wall_seconds: float
    text: str  # the rewritten selection, to show which sizes change the answer


def rotated(sizes: Sequence[int], index: int) -> list[int]:
    """The sizes in the order problem `index` runs them: each size leads in turn."""
    shift = index % len(sizes)
    return list(sizes[shift:]) + list(sizes[:shift])


def time_contexts(loaded: LoadedModel, tasks: Sequence[Task], sizes: Sequence[int],
                  on_row: Callable[[ContextCostRow], None], *,
                  method: str = DEFAULT_METHOD) -> None:
    """Every task at every size, each row handed to on_row as soon as it is timed."""
    for index, task in enumerate(tasks):
        for position, lines in enumerate(rotated(sizes, index)):
            split = split_problem(task.code, task.reference or task.code, CHANGED, lines)
            result = rewrite(loaded, split.selection, task.instruction, language=task.language,
                             context_before=split.context_before,
                             context_after=split.context_after, method=method)
            s = result.stats
            on_row(ContextCostRow(task=task.id, context_lines=lines, position=position,
                                  prompt_tokens=s.prompt_tokens,
                                  output_tokens=s.output_tokens,
                                  forward_passes=s.forward_passes,
                                  wall_seconds=round(s.wall_seconds, 4), text=result.text))


def summary_markdown(rows: list[dict[str, str]]) -> str:
    """Totals per size, and each size's time against the first size's on the same problems."""
    sizes = sorted({int(r["context_lines"]) for r in rows})
    by = {(r["task"], int(r["context_lines"])): r for r in rows}
    tasks = sorted({t for t, _ in by if all((t, n) in by for n in sizes)})
    base = sizes[0]
    lines = [f"{len(tasks)} problems, every size on each\n",
             "| context lines | prompt tokens | output tokens | forward passes | seconds | "
             f"median ratio to {base} lines | same text as {base} lines |",
             "|---|---|---|---|---|---|---|"]
    for n in sizes:
        picked = [by[(t, n)] for t in tasks]
        total = {key: sum(float(r[key]) for r in picked)
                 for key in ("prompt_tokens", "output_tokens", "forward_passes", "wall_seconds")}
        ratios = [float(by[(t, n)]["wall_seconds"]) / float(by[(t, base)]["wall_seconds"])
                  for t in tasks if float(by[(t, base)]["wall_seconds"]) > 0]
        same = sum(by[(t, n)]["text"] == by[(t, base)]["text"] for t in tasks)
        lines.append(f"| {n} | {total['prompt_tokens']:.0f} | {total['output_tokens']:.0f} | "
                     f"{total['forward_passes']:.0f} | {total['wall_seconds']:.1f} | "
                     f"{statistics.median(ratios) if ratios else float('nan'):.3f} | "
                     f"{same} of {len(tasks)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench.context_cost",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="catalog name, folder or .gguf file")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", default=None,
                   help="auto or a count (default: SPECEDIT_THREADS, else auto)")
    p.add_argument("--context-lines", default="20,60", help="comma-separated sizes")
    p.add_argument("--instruction", default="descriptive", choices=INSTRUCTION_KINDS)
    p.add_argument("--limit", type=int, default=None, help="the first N problems")
    p.add_argument("--tasks", default=None, help="comma-separated problem ids instead")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("context-cost"))
    args = p.parse_args(argv)
    sizes = [int(n) for n in args.context_lines.split(",") if n.strip()]
    if not sizes or min(sizes) < 0:
        p.error("--context-lines takes sizes >= 0")
    from engine.model.loading import load_model

    tasks = select(load_canitedit(find_data_dir(args.data), args.instruction), args.tasks,
                   args.limit)
    loaded = load_model(args.model or default_model(), args.device, args.dtype,
                        threads=args.threads)
    warm_up(loaded, [DEFAULT_METHOD], None)
    args.out.mkdir(parents=True, exist_ok=True)
    log = CsvLog(args.out / "rows.csv", resume=False, row_type=ContextCostRow)
    time_contexts(loaded, tasks, sizes,
                  on_row=lambda r: (log.add(r), print(f"{r.task} {r.context_lines} lines "
                                                        f"{r.wall_seconds:.2f} s", flush=True)))
    summary = summary_markdown(read_rows(log.path))
    (args.out / "summary.md").write_text(summary)
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
