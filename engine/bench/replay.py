"""Replay known outputs through proposers: forward passes and modelled time, no model run.

Whatever a proposer drafts, the verifying loop keeps greedy's tokens, so given greedy's
output the whole run is fixed by the proposer alone: each pass keeps the draft's agreeing
prefix plus one token. Replaying `specedit eval` rows (whose `code` column is greedy's
rewrite) through each method's proposer counts its passes exactly for that output and
models its time from a pass-cost curve t(n) = a + b*n. This is how drafting policies are
compared over all 105 CanItEdit problems in seconds; `specedit bench` then measures the
chosen one for real.

The output is the rewrite tokenised as the draft spells the original (in context after the
prompt), which is what greedy wrote up to tokenisation ties: the replay models, the bench
measures.

    python -m engine.bench.replay --rows eval-0.5b-bf16/rows.csv --curve 0.13,0.0097 \
        --methods speculative-original,speculative
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.decode.draft_length import PassCostCurve
from engine.decode.methods import build_proposer
from engine.rewriting.prompt import build_prompt

from .methods import parse_bench_method
from .run import read_rows
from .tasks import Task, find_data_dir, load_canitedit


@dataclass(frozen=True)
class RecordedPass:
    """One forward pass's shape (recorded from a run, or replayed), and its seconds."""

    cached: int  # tokens in the cache before the pass
    tokens: int  # tokens the pass feeds
    keep: int  # positions whose logits it computes
    seconds: float = field(default=0.0, compare=False)  # as timed, where a clock was given


@dataclass(frozen=True)
class Replay:
    passes: int
    drafted: int  # draft tokens fed, accepted or not
    seconds: float  # modelled from the curve


def replay_passes(proposer: Any, prompt_tokens: int, output: Sequence[int],
                  max_new_tokens: int | None = None) -> list[RecordedPass]:
    """The passes (shapes) the verifying loop makes with `proposer` after a prompt of
    `prompt_tokens` where greedy writes `output` (up to and including the token that stopped
    it): the first feeds the prompt and its draft on an empty cache, each later one the
    newest token and its draft (the runner keeps every accepted token). Drafts may run up to
    `max_new_tokens` (default: the output's length), as the loop's do."""
    limit = len(output) if max_new_tokens is None else max_new_tokens
    done: list[int] = []
    passes: list[RecordedPass] = []
    while len(done) < len(output):
        room = limit - len(done)
        draft = proposer.propose(done, room)[:room] if proposer is not None else []
        accepted = 0
        while (accepted < len(draft) and len(done) + accepted < len(output)
               and draft[accepted] == output[len(done) + accepted]):
            accepted += 1
        if proposer is not None:
            proposer.feedback(len(draft), accepted)
        if passes:
            passes.append(RecordedPass(prompt_tokens + len(done) - 1, 1 + len(draft),
                                       1 + len(draft)))
        else:
            passes.append(RecordedPass(0, prompt_tokens + len(draft), 1 + len(draft)))
        done = list(output[: len(done) + accepted + 1])
    return passes


def replay(proposer: Any, output: Sequence[int], curve: PassCostCurve) -> Replay:
    """The passes the verifying loop makes with `proposer` where greedy writes `output`, each
    priced by the curve as feeding its draft plus one token (the prompt left out)."""
    passes = replay_passes(proposer, 0, output)
    return Replay(len(passes), sum(p.keep - 1 for p in passes),
                  sum(curve.seconds(p.keep) for p in passes))


def replay_rows(tokenizer: Any, rows: list[dict[str, str]], tasks: dict[str, Task],
                methods: list[str], curve: PassCostCurve) -> dict[str, list[Replay]]:
    """Each method's replay of each whole-file row (one list per method, rows in order)."""
    out: dict[str, list[Replay]] = {m: [] for m in methods}
    for row in rows:
        task = tasks[row["task"]]
        fmt = row["prompt_format"]
        prompt = build_prompt(tokenizer, task.code, task.instruction, language=task.language,
                              prompt_format=fmt)
        output = build_prompt(tokenizer, row["code"], task.instruction, language=task.language,
                              prompt_format=fmt).draft_ids
        for method in methods:
            proposer = build_proposer(parse_bench_method(method), prompt=prompt.prompt_ids,
                                      original=prompt.draft_ids, cost=curve)
            out[method].append(replay(proposer, output, curve))
    return out


def table(results: dict[str, list[Replay]], baseline: str) -> list[str]:
    lines = ["| method | problems | passes | draft tokens | modelled s | geo-mean speed vs "
             f"{baseline} | worst problem | best problem |", "|---|---|---|---|---|---|---|---|"]
    base = results[baseline]
    for method, runs in results.items():
        ratios = [b.seconds / r.seconds for b, r in zip(base, runs, strict=True)]
        geo = math.exp(statistics.fmean(math.log(x) for x in ratios)) if ratios else 1.0
        lines.append(f"| {method} | {len(runs)} | {sum(r.passes for r in runs)} | "
                     f"{sum(r.drafted for r in runs)} | {sum(r.seconds for r in runs):.1f} | "
                     f"{geo:.3f}x | {min(ratios, default=1.0):.3f}x | "
                     f"{max(ratios, default=1.0):.3f}x |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=Path, required=True, help="a specedit eval rows.csv")
    parser.add_argument("--curve", required=True, help="A,B: seconds per pass and per token fed")
    parser.add_argument("--methods", default="greedy,speculative-original,speculative")
    parser.add_argument("--prompt-format", help="only the rows of this prompt format")
    parser.add_argument("--model", help="tokenizer (default: the rows' model)")
    parser.add_argument("--data", type=Path)
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    from engine.model.catalog import cached_model_dir

    rows = [r for r in read_rows(args.rows) if r["selection"] == "file"
            and args.prompt_format in (None, r["prompt_format"])]
    kinds = {r["instruction"] for r in rows}
    if len(kinds) != 1:
        parser.error("--rows needs whole-file rows of one instruction kind")
    tasks = {t.id: t for t in load_canitedit(find_data_dir(args.data), kinds.pop())}
    spec = args.model or rows[0]["model"]
    folder = Path(spec) if Path(spec).is_dir() else (
        cached_model_dir(spec, "bfloat16") or cached_model_dir(spec, "float32"))
    if folder is None:
        parser.error(f"no tokenizer for {spec!r}: pass a model folder or pull the model first")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    a, b = (float(x) for x in args.curve.split(","))
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    results = replay_rows(tokenizer, rows, tasks, methods, PassCostCurve(a, b, "declared"))
    print("\n".join(table(results, methods[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
