"""Run every method on every task in one process, after a warm-up, and record one row each."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from engine.contract import InvalidRequestError
from engine.decode.methods import MethodConfig
from engine.model.loading import LoadedModel
from engine.rewriting.prompt import build_prompt
from engine.rewriting.rewrite import RewriteResult, rewrite

from .hf_prompt_lookup import rewrite_with_hf_prompt_lookup
from .lower_bound import lower_bound_passes
from .methods import HF_PROMPT_LOOKUP, parse_bench_method
from .tasks import Task


@dataclass
class Row:
    task: str
    method: str
    model: str
    dtype: str
    device: str
    prompt_tokens: int
    output_tokens: int
    forward_passes: int
    drafted_tokens: int
    accepted_tokens: int
    wall_seconds: float
    tokens_per_second: float
    identical_to_greedy: bool | str  # "" when greedy was not run
    first_difference: int | str  # index of the first token that differs from greedy's
    lower_bound_passes: int | str
    efficiency: float | str  # passes / lower bound (1.0 is the floor for original-only drafts)
    correct: bool | str  # CanItEdit tests or the worked example's check; "" when unknown
    finish_reason: str


def first_difference(a: list[int], b: list[int]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


class CsvLog:
    """Appends rows as they finish, so an interrupted run can be resumed.

    `done` holds the `key` columns of the rows already there (on --resume): (task, method)
    for the benchmark's Row; `specedit eval` passes its own row type and key.
    """

    def __init__(self, path: Path, resume: bool, row_type: type = Row,
                 key: tuple[str, ...] = ("task", "method")) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = [fl.name for fl in fields(row_type)]
        old = read_rows(path) if resume else []
        if resume and path.exists():
            with path.open(newline="") as f:
                header = next(csv.reader(f), [])
            if header != columns:
                raise InvalidRequestError(
                    f"{path} has other columns than this command writes: use another --out "
                    "or drop --resume")
        self.done = {tuple(r[k] for k in key) for r in old}
        if not resume or not path.exists():
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(columns)

    def add(self, row: Any) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow(list(asdict(row).values()))


def run_method(loaded: LoadedModel, code: str, instruction: str, method: MethodConfig, *,
               language: str | None = None, draft: LoadedModel | None = None,
               max_new_tokens: int | None = None) -> RewriteResult:
    """One rewrite by `method`: transformers' generate for the baseline, else engine.rewrite."""
    if method.name == HF_PROMPT_LOOKUP:
        return rewrite_with_hf_prompt_lookup(loaded, code, instruction, language=language,
                                             max_new_tokens=max_new_tokens)
    return rewrite(loaded, code, instruction, language=language, method=method,
                   max_new_tokens=max_new_tokens, draft=draft)


def warm_up(loaded: LoadedModel, methods: Iterable[str], draft: LoadedModel | None) -> None:
    for method in methods:
        run_method(loaded, "def f(x):\n    return x\n", "rename x to y",
                   parse_bench_method(method), language="python", draft=draft,
                   max_new_tokens=8)


def run_task(loaded: LoadedModel, task: Task, methods: list[str], log: CsvLog, *,
             draft: LoadedModel | None = None, max_new_tokens: int | None = None,
             on_row: Callable[[Row], None] | None = None) -> dict[str, RewriteResult]:
    """Run `methods` on `task`, log a row each; returns the results by method (for the
    endpoint benchmark, which compares an endpoint's text with them)."""
    # Greedy first: every other method is compared with it. On a resume, greedy runs again
    # (as the reference) only if some other method of this task is still missing.
    ordered = sorted(methods, key=lambda m: m != "greedy")
    missing = [m for m in ordered if (task.id, m) not in log.done]
    if missing and "greedy" in ordered and "greedy" not in missing:
        missing.insert(0, "greedy")
    ordered = missing
    greedy: RewriteResult | None = None
    results: dict[str, RewriteResult] = {}
    prompt = build_prompt(loaded.tokenizer, task.code, task.instruction, language=task.language,
                          model=loaded.model)
    for method in ordered:
        result = run_method(loaded, task.code, task.instruction, parse_bench_method(method),
                            language=task.language, draft=draft, max_new_tokens=max_new_tokens)
        results[method] = result
        if method == "greedy":
            greedy = result
        reference = greedy.output_ids if greedy is not None else None
        diff = first_difference(result.output_ids, reference) if reference is not None else None
        bound: int | str = ""
        if reference is not None:
            bound = lower_bound_passes(prompt.draft_ids, reference)[0]
        s = result.stats
        row = Row(
            task=task.id, method=method, model=loaded.name, dtype=str(loaded.dtype).split(".")[-1],
            device=str(loaded.device), prompt_tokens=s.prompt_tokens,
            output_tokens=s.output_tokens, forward_passes=s.forward_passes,
            drafted_tokens=s.drafted_tokens, accepted_tokens=s.accepted_tokens,
            wall_seconds=round(s.wall_seconds, 4), tokens_per_second=round(s.tokens_per_second, 2),
            identical_to_greedy="" if reference is None else diff is None,
            first_difference="" if diff is None else diff,
            lower_bound_passes=bound,
            efficiency="" if bound == "" else round(s.forward_passes / int(bound), 3),
            correct=_correct(task, result),
            finish_reason=result.finish_reason,
        )
        if (task.id, method) not in log.done:
            log.add(row)
        if on_row is not None:
            on_row(row)
    return results


def _correct(task: Task, result: RewriteResult) -> bool | str:
    verdict = task.check(result.text)
    return "" if verdict is None else verdict


def geometric_mean(values: list[float]) -> float:
    values = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")
