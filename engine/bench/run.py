"""Run every method on every task in one process, after a warm-up, and record one row each."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..contract import InvalidRequestError
from ..loading import LoadedModel
from ..prompt import build_prompt
from ..proposers import OriginalDraftSettings
from ..rewriting import METHODS, RewriteResult, rewrite
from .lower_bound import lower_bound_passes
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


def parse_method(name: str) -> tuple[str, OriginalDraftSettings | None]:
    """`speculative:N` is speculative edits with every draft capped at N tokens.

    Capping trades a few more passes over unchanged code for less work thrown away when the
    model leaves the original early in a long draft, which matters where a batched pass costs
    nearly as much per token as a one-token pass (bf16 on CPUs without native bf16).
    """
    base, _, cap = name.partition(":")
    if base not in METHODS:
        raise InvalidRequestError(f"unknown method {name!r}; use {', '.join(METHODS)}")
    if not cap:
        return name, None
    if base != "speculative" or not cap.isdigit() or int(cap) < 1:
        raise InvalidRequestError(f"bad method {name!r}: only speculative:N (N >= 1) takes a cap")
    return base, OriginalDraftSettings.capped(int(cap))


def warm_up(loaded: LoadedModel, methods: Iterable[str], draft: LoadedModel | None) -> None:
    for method in methods:
        base, settings = parse_method(method)
        rewrite(loaded, "def f(x):\n    return x\n", "rename x to y", language="python",
                method=base, max_new_tokens=8, draft=draft, draft_settings=settings)


def run_task(loaded: LoadedModel, task: Task, methods: list[str], log: CsvLog, *,
             draft: LoadedModel | None = None, max_new_tokens: int | None = None,
             on_row: Callable[[Row], None] | None = None) -> None:
    # Greedy first: every other method is compared with it. On a resume, greedy runs again
    # (as the reference) only if some other method of this task is still missing.
    ordered = sorted(methods, key=lambda m: m != "greedy")
    missing = [m for m in ordered if (task.id, m) not in log.done]
    if missing and "greedy" in ordered and "greedy" not in missing:
        missing.insert(0, "greedy")
    ordered = missing
    greedy: RewriteResult | None = None
    prompt = build_prompt(loaded.tokenizer, task.code, task.instruction, language=task.language,
                          model=loaded.model)
    for method in ordered:
        base, settings = parse_method(method)
        result = rewrite(loaded, task.code, task.instruction, language=task.language,
                         method=base, max_new_tokens=max_new_tokens, draft=draft,
                         draft_settings=settings)
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


def _correct(task: Task, result: RewriteResult) -> bool | str:
    verdict = task.check(result.text)
    return "" if verdict is None else verdict


def geometric_mean(values: list[float]) -> float:
    values = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")
