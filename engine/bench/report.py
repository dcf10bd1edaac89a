"""Markdown summary and plots from the benchmark's CSV rows."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from engine.cli.extras import require_extra

from .methods import HF_PROMPT_LOOKUP
from .run import geometric_mean, read_rows

# The lookup baseline each method is compared with: transformers' prompt lookup when the run
# has it, else our n-gram proposer (synthetic runs, which cannot run transformers' baseline).
LOOKUP_BASELINES = (HF_PROMPT_LOOKUP, "prompt-lookup")


def _by_task(rows: list[dict[str, str]]) -> dict[str, dict[str, dict[str, str]]]:
    table: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    for r in rows:
        table[r["task"]][r["method"]] = r
    return table


def speedups(rows: list[dict[str, str]], method: str, against: str) -> dict[str, float]:
    out = {}
    for task, methods in _by_task(rows).items():
        if method in methods and against in methods:
            mine = float(methods[method]["wall_seconds"])
            if mine > 0:
                out[task] = float(methods[against]["wall_seconds"]) / mine
    return out


def summary_markdown(rows: list[dict[str, str]], title: str = "") -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lookup = next((m for m in LOOKUP_BASELINES if m in methods), LOOKUP_BASELINES[0])
    lines = [title] if title else []
    lines += [
        f"| method | tasks | median speed-up vs greedy | geo-mean vs greedy | median vs {lookup}"
        f" | geo-mean vs {lookup} | median passes/token | median efficiency "
        "(passes / lower bound) | identical to greedy | correct | worst task (vs greedy) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        vs_greedy = speedups(rows, method, "greedy")
        vs_lookup = speedups(rows, method, lookup)
        per_token = [int(r["forward_passes"]) / max(int(r["output_tokens"]), 1) for r in mine]
        eff = [float(r["efficiency"]) for r in mine if r["efficiency"] not in ("", None)]
        same = [r for r in mine if r["identical_to_greedy"] == "True"]
        known = [r for r in mine if r["identical_to_greedy"] in ("True", "False")]
        checked = [r for r in mine if r["correct"] in ("True", "False")]
        right = [r for r in checked if r["correct"] == "True"]
        worst = min(vs_greedy.items(), key=lambda kv: kv[1]) if vs_greedy else None

        def fmt(values: dict[str, float]) -> tuple[str, str]:
            if not values:
                return "-", "-"
            v = list(values.values())
            return f"{statistics.median(v):.2f}x", f"{geometric_mean(v):.2f}x"

        mg, gg = fmt(vs_greedy)
        ml, gl = fmt(vs_lookup)
        lines.append(
            f"| {method} | {len(mine)} | {mg} | {gg} | {ml} | {gl} | "
            f"{statistics.median(per_token):.3f} | "
            f"{f'{statistics.median(eff):.2f}' if eff else '-'} | "
            f"{len(same)}/{len(known)} | {len(right)}/{len(checked)} | "
            f"{f'{worst[0]} ({worst[1]:.2f}x)' if worst else '-'} |")
    differing = [r for r in rows if r["identical_to_greedy"] == "False"]
    if differing:
        lines.append("")
        lines.append("Outputs that differ from greedy (task, method, first differing token):")
        lines += [f"- {r['task']} / {r['method']}: token {r['first_difference']}"
                  for r in differing]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, str]], out: Path) -> list[Path]:
    require_extra("bench", "matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if m != "greedy"]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for method in methods:
        values = sorted(speedups(rows, method, "greedy").values())
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=method)
    ax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
    ax.set_xlabel("task (sorted by speed-up)")
    ax.set_ylabel("speed-up vs greedy (wall time)")
    ax.set_title("Speed-up per task")
    ax.legend()
    fig.tight_layout()
    paths.append(out / "speedup_per_task.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 5))
    top = 1
    for method in [*methods, "greedy"]:
        pts = [(int(r["lower_bound_passes"]), int(r["forward_passes"])) for r in rows
               if r["method"] == method and r["lower_bound_passes"] not in ("", None)]
        if pts:
            ax.scatter(*zip(*pts, strict=True), s=14, label=method)
            top = max(top, *(max(p) for p in pts))
    ax.plot([1, top], [1, top], color="gray", linestyle="--", linewidth=1, label="lower bound")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("lower bound on forward passes")
    ax.set_ylabel("forward passes")
    ax.set_title("Passes against the lower bound")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "passes_vs_lower_bound.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def write_report(csv_path: Path, out: Path, title: str = "") -> Path:
    rows = read_rows(csv_path)
    path = out / "summary.md"
    path.write_text(summary_markdown(rows, title))
    plot(rows, out)
    return path
