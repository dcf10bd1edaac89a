"""How much of a rewrite's time better drafting could still save, from its own timed passes.

    python -m engine.bench.drafting_bound --model M [--limit 20] [--threads 2] [--out DIR]
    python -m engine.bench.drafting_bound --from DIR/passes.json [--curve A,B[,S]]

Each task (CanItEdit's first `--limit` problems and the worked example, the tasks of the
llama-server comparison) is rewritten with `speculative` and every default, each forward pass
timed with its shape: tokens cached, fed, logits kept (laptop.PassRecorder). A cost model is
fitted to those passes by least squares, one line per kernel path (one token; 2-5 tokens, the
direct kernel; 6 or more, the panel kernel) in the tokens fed, the logits kept and the
attention work (tokens fed times context). Then greedy's output (the rewrite's: speculative
keeps greedy's tokens) is replayed through three ways of drafting, each pass priced by the
model:

- `speculative`: the engine's own proposer, draft-length policy and curve; it makes the very
  passes the run made, so it checks the model against the measured seconds.
- `oracle`: the same sources of drafts (the original; n-gram lookup where it has no match),
  uncapped, each draft cut exactly where greedy's output leaves it, so no verified token is
  ever thrown away and no draft stops short of what its source agrees on. No sizing of drafts
  from these sources can beat it on these passes.
- `all-drafted`: the whole output verified in the first pass, as if a proposer knew every
  token: the prompt's prefill plus one verifying row per output token. Nothing that keeps
  greedy's output exactly can cost less on these passes.

Prints one CSV line per task and a total; `--out` keeps the rows and the recorded passes.
`--from` reads recorded passes back instead of rewriting (no model is loaded), and `--curve`
replays `speculative` with another pass-cost curve (seconds: fixed, per token, one-token
pass) than the one the run used, to see what tuning the draft-length policy could gain.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.decode.proposers import Proposer

from .laptop import PassRecorder
from .replay import RecordedPass, replay_passes

if TYPE_CHECKING:
    from engine.decode.draft_length import PassCostCurve
    from engine.model.loading import LoadedModel

# The kernel paths a pass can take, by the tokens it feeds (kernels.c: SEK_DIRECT_ROWS).
DIRECT_ROWS = 5
KINDS = ("one", "direct", "panel")


def kind(tokens: int) -> str:
    return "one" if tokens == 1 else "direct" if tokens <= DIRECT_ROWS else "panel"


def _features(p: RecordedPass) -> list[float]:
    # Attention reads the context once per fed token: tokens x (cached + tokens / 2).
    return [1.0, float(p.tokens), float(p.keep), p.tokens * (p.cached + p.tokens / 2) / 1000.0]


# Which features each kind's line uses: a one-token pass feeds one token and keeps one row,
# and the direct kernel's rows each need their logits, so those columns would be collinear.
_COLUMNS = {"one": [0, 3], "direct": [0, 1, 3], "panel": [0, 1, 2, 3]}


@dataclass(frozen=True)
class PassCostModel:
    """Seconds of a pass = coefficients . (1, tokens fed, logits kept, attention work), one set
    of coefficients per kernel path (unused features have 0)."""

    coefficients: dict[str, tuple[float, float, float, float]]

    def seconds(self, p: RecordedPass) -> float:
        c = self.coefficients[kind(p.tokens)]
        return float(np.dot(c, _features(p)))

    def total(self, passes: Sequence[RecordedPass]) -> float:
        return sum(self.seconds(p) for p in passes)


def fit_cost_model(passes: Sequence[RecordedPass]) -> PassCostModel:
    """Least squares per kernel path over timed passes (a path without passes costs what the
    nearest fitted one does)."""
    coefficients: dict[str, tuple[float, float, float, float]] = {}
    for k in KINDS:
        rows = [p for p in passes if kind(p.tokens) == k]
        columns = _COLUMNS[k]
        if len(rows) < len(columns):
            continue
        x = np.array([_features(p) for p in rows])[:, columns]
        y = np.array([p.seconds for p in rows])
        solved = np.linalg.lstsq(x, y, rcond=None)[0]
        full = [0.0] * 4
        for i, value in zip(columns, solved, strict=True):
            full[i] = float(value)
        coefficients[k] = (full[0], full[1], full[2], full[3])
    if not coefficients:
        raise ValueError("no kernel path has enough timed passes to fit")
    for k in KINDS:  # a path never taken borrows a neighbour's line
        if k not in coefficients:
            coefficients[k] = next(coefficients[o] for o in (*KINDS[KINDS.index(k):], *KINDS)
                                   if o in coefficients)
    return PassCostModel(coefficients)


class Clairvoyant(Proposer):
    """Another proposer's drafts cut where `output` leaves them: nothing proposed is rejected."""

    def __init__(self, inner: Proposer, output: Sequence[int]) -> None:
        self.inner = inner
        self.output = list(output)

    def propose(self, output: Sequence[int], max_tokens: int) -> list[int]:
        draft = self.inner.propose(output, max_tokens)
        done, agree = len(output), 0
        while (agree < len(draft) and done + agree < len(self.output)
               and draft[agree] == self.output[done + agree]):
            agree += 1
        return draft[:agree]

    def feedback(self, proposed: int, accepted: int) -> None:
        self.inner.feedback(proposed, accepted)


@dataclass
class TaskPasses:
    """One task's rewrite: its token ids and its timed passes."""

    task: str
    prompt_ids: list[int]
    draft_ids: list[int]
    output_ids: list[int]  # every token decoded, the one that stopped the loop included
    max_new_tokens: int
    wall_seconds: float
    passes: list[RecordedPass]


def record_task(loaded: LoadedModel, code: str, instruction: str, language: str,
                task: str) -> TaskPasses:
    """Rewrite with `speculative` (a native-decoder model, warmed up), timing every pass."""
    from engine.rewriting.rewrite import prepare_rewrite, rewrite

    decoder = loaded.model
    recorder = PassRecorder(decoder.kernel_pass, clock=time.perf_counter)
    decoder.kernel_pass = recorder
    try:
        result = rewrite(loaded, code, instruction, language=language, method="speculative")
    finally:
        decoder.kernel_pass = recorder.kernel_pass
    if len(recorder.passes) != result.stats.forward_passes:
        raise RuntimeError("recorded passes differ from the rewrite's: warm the model up first")
    prepared = prepare_rewrite(loaded, code, instruction, language=language)
    prompt, output = prepared.prompt, list(result.output_ids)
    # A stop token (EOS) is decoded but left out of the output; a stop text's last token stays.
    if result.finish_reason == "stop" and prompt.stop.first_stop(output, 0) is None:
        output.append(min(prompt.stop.stop_tokens.ids))
    return TaskPasses(task, list(prompt.prompt_ids), list(prompt.draft_ids), output,
                      prepared.max_new_tokens, result.stats.wall_seconds, recorder.passes)


@dataclass(frozen=True)
class Bound:
    task: str
    prompt_tokens: int
    output_tokens: int
    wall_seconds: float
    measured_seconds: float  # the recorded passes, as timed
    model_seconds: float  # the recorded passes, as the model prices them
    replayed_same: bool  # the replay of speculative made exactly the recorded passes
    speculative_seconds: float
    oracle_seconds: float
    all_drafted_seconds: float
    passes: int
    oracle_passes: int


def oracle_proposer(prompt: Sequence[int], original: Sequence[int],
                    output: Sequence[int]) -> Clairvoyant:
    """`speculative`'s sources of drafts with nothing cutting them short (no length policy, no
    caps: the whole remainder of the original, any continuation found by lookup), each
    draft then cut where greedy's `output` leaves it."""
    from engine.decode.proposers import (
        LookupFallbackProposer,
        OriginalCodeProposer,
        OriginalDraftSettings,
        PromptLookupProposer,
    )

    unlimited = len(prompt) + len(output) + 1
    inner = LookupFallbackProposer(
        OriginalCodeProposer(original, OriginalDraftSettings(weak_draft=unlimited)),
        PromptLookupProposer(prompt, num_tokens=unlimited))
    return Clairvoyant(inner, output)


def bound_task(t: TaskPasses, model: PassCostModel, proposer: Callable[[], Proposer]) -> Bound:
    """`proposer` builds the engine's proposer for this task (its policy keeps state)."""
    replayed = replay_passes(proposer(), len(t.prompt_ids), t.output_ids, t.max_new_tokens)
    oracle = replay_passes(oracle_proposer(t.prompt_ids, t.draft_ids, t.output_ids),
                           len(t.prompt_ids), t.output_ids, t.max_new_tokens)
    everything = [RecordedPass(0, len(t.prompt_ids) + len(t.output_ids) - 1,
                               len(t.output_ids))]
    return Bound(t.task, len(t.prompt_ids), len(t.output_ids), t.wall_seconds,
                 sum(p.seconds for p in t.passes), model.total(t.passes),
                 replayed == t.passes, model.total(replayed), model.total(oracle),
                 model.total(everything), len(t.passes), len(oracle))


def _engine_proposer(t: TaskPasses, curve: PassCostCurve) -> Callable[[], Proposer]:
    from engine.decode.methods import build_proposer, parse_method

    def build() -> Proposer:
        proposer = build_proposer(parse_method("speculative"), prompt=t.prompt_ids,
                                  original=t.draft_ids, cost=curve)
        assert proposer is not None
        return proposer

    return build


def _load(path: Path) -> tuple[dict[str, Any], list[TaskPasses]]:
    data = json.loads(path.read_text())
    tasks = [TaskPasses(**{**t, "passes": [RecordedPass(**p) for p in t["passes"]]})
             for t in data["tasks"]]
    return data, tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.drafting_bound",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a GGUF model (default: the default "
                        "model)")
    parser.add_argument("--limit", type=int, default=20, help="CanItEdit problems, in order")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None,
                        help="a folder for rows.csv and passes.json")
    parser.add_argument("--from", dest="source", type=Path, default=None,
                        help="a passes.json written by --out: replay it, rewrite nothing")
    parser.add_argument("--curve", default=None,
                        help="A,B[,S]: replay speculative with t(n) = A + B*n (and S for one "
                        "token) instead of the run's curve")
    args = parser.parse_args(argv)

    from engine.decode.draft_length import PassCostCurve

    if args.source is not None:
        data, recorded = _load(args.source)
        name, threads = data["model"], data["threads"]
        curve = PassCostCurve(**data["curve"])
    else:
        threads = args.threads
        name, curve, recorded = _record(parser, args.model, args.limit, threads)
    if args.curve is not None:
        values = [float(v) for v in args.curve.split(",")]
        curve = PassCostCurve(values[0], values[1], "declared",
                              values[2] if len(values) > 2 else None)
    model = fit_cost_model([p for t in recorded for p in t.passes])
    bounds = [bound_task(t, model, _engine_proposer(t, curve)) for t in recorded]
    fields = list(Bound.__dataclass_fields__)
    print(f"# {name}, {threads} threads, curve a={curve.fixed_seconds:.4f} "
          f"b={curve.seconds_per_token:.5f} single={curve.single_seconds}")
    for k, c in model.coefficients.items():
        print(f"# {k}: ms = {c[0] * 1e3:.2f} + {c[1] * 1e3:.3f}/token fed + "
              f"{c[2] * 1e3:.3f}/logit row + {c[3] * 1e3:.3f}/(token x 1000 cached)")
    print(",".join(fields))
    for b in bounds:
        print(",".join(_cell(getattr(b, f)) for f in fields))
    totals = {f: sum(getattr(b, f) for b in bounds) for f in fields
              if f.endswith("seconds") or f.endswith("passes")}
    print("total," + ",".join(_cell(totals.get(f, "")) for f in fields[1:]))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        with (args.out / "rows.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(asdict(b) for b in bounds)
        (args.out / "passes.json").write_text(json.dumps(
            {"model": name, "threads": threads, "curve": asdict(curve),
             "coefficients": model.coefficients,
             "tasks": [asdict(t) for t in recorded]}))
    return 0


def _record(parser: argparse.ArgumentParser, model: str | None, limit: int,
            threads: int) -> tuple[str, PassCostCurve, list[TaskPasses]]:
    """Rewrite the tasks with `speculative`, every pass timed."""
    import torch

    from engine import default_model, load_model
    from engine.model.pass_cost import pass_cost

    from .run import warm_up
    from .tasks import find_data_dir, load_canitedit, load_worked_example, select

    torch.set_num_threads(threads)
    name = model or default_model()
    loaded = load_model(name, threads=threads)
    if loaded.dtype != "gguf":
        parser.error(f"{name} loaded as {loaded.dtype}: the passes are timed on the native "
                     "decoder's GGUF weights")
    data = find_data_dir()
    tasks = select(load_canitedit(data), None, limit) + [load_worked_example(data)]
    warm_up(loaded, ["speculative"], None)
    curve = pass_cost(loaded)
    recorded = [record_task(loaded, t.code, t.instruction, t.language, t.id) for t in tasks]
    return name, curve, recorded


def _cell(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    raise SystemExit(main())
