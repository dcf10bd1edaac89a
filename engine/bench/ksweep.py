"""`specedit ksweep`: how the draft length K changes time, target passes and acceptance.

First the baseline (the target alone, greedy, one token per pass), then one run of
draft-model speculative decoding per K, all in one process after warming both models up.
Definitions used in the table:
- accepted/verify: draft tokens the target accepted per verification pass (0..K).
- tokens/verify: tokens gained per verification pass = accepted + the target's own token.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from engine.cli.extras import require_extra
from engine.contract import InvalidRequestError
from engine.decode.loop import DecodeResult, decode
from engine.decode.methods import DraftModel, MethodConfig, build_proposer, parse_method
from engine.decode.proposers import check_same_tokenizer
from engine.decode.runner import ModelRunner, synchronize
from engine.decode.stopping import StopTokens
from engine.model.loading import LoadedModel, load_model
from engine.rewriting.prompt import stop_token_ids


@dataclass
class SweepRow:
    k: str
    wall_seconds: float
    target_passes: int
    draft_passes: int
    verification_steps: int
    accepted_per_verify: float
    tokens_per_verify: float
    output_tokens: int
    speedup: float
    identical: bool


def _timed(device: torch.device, run: Callable[[], DecodeResult]) -> DecodeResult:
    """Baseline and every K are timed alike: device synchronised before reading clocks."""
    synchronize(device)
    started = time.perf_counter()
    result = run()
    synchronize(device)
    result.stats.wall_seconds = time.perf_counter() - started
    return result


def run_baseline(target: LoadedModel, prompt: list[int], stop: StopTokens,
                 max_new: int) -> DecodeResult:
    return _timed(target.device,
                  lambda: decode(ModelRunner(target.model), prompt, None, stop, max_new))


def method_for_k(k: str) -> MethodConfig:
    """`--k` values: a number is a fixed K, `auto` the adaptive schedule."""
    try:
        return parse_method("draft-model" if k == "auto" else f"draft-model:{k}")
    except InvalidRequestError:
        raise InvalidRequestError(f"--k {k!r}: K is a whole number >= 1, or auto") from None


def run_k(target: LoadedModel, draft: LoadedModel, prompt: list[int], stop: StopTokens,
          max_new: int, method: MethodConfig) -> DecodeResult:
    proposer = build_proposer(method, prompt=prompt, stop_ids=stop.ids,
                              draft=DraftModel(draft.model, draft.tokenizer, target.tokenizer))
    return _timed(target.device,
                  lambda: decode(ModelRunner(target.model), prompt, proposer, stop, max_new))


def sweep(target: LoadedModel, draft: LoadedModel, prompt_text: str, max_new: int,
          ks: list[str], log: Any = print) -> tuple[DecodeResult, list[SweepRow]]:
    check_same_tokenizer(draft.tokenizer, target.tokenizer)
    prompt = target.tokenizer(prompt_text)["input_ids"]
    stop = StopTokens(stop_token_ids(target.tokenizer, target.model))
    methods = [method_for_k(k) for k in ks]
    # Warm-up: first calls pay for allocations and kernel selection; keep them out of timings.
    run_k(target, draft, prompt, stop, 8, method_for_k("2"))
    run_baseline(target, prompt, stop, 8)
    base = run_baseline(target, prompt, stop, max_new)
    log(f"baseline: {base.stats.output_tokens} tokens, {base.stats.forward_passes} passes, "
        f"{base.stats.wall_seconds:.2f} s")
    rows = []
    for k, method in zip(ks, methods, strict=True):
        result = run_k(target, draft, prompt, stop, max_new, method)
        s = result.stats
        steps = max(s.verification_steps, 1)
        rows.append(SweepRow(
            k=k, wall_seconds=s.wall_seconds, target_passes=s.forward_passes,
            draft_passes=s.draft_forward_passes, verification_steps=s.verification_steps,
            accepted_per_verify=s.accepted_tokens / steps,
            # Each verification gains its accepted tokens plus the target's own token.
            tokens_per_verify=(s.accepted_tokens + s.verification_steps) / steps,
            output_tokens=s.output_tokens,
            speedup=base.stats.wall_seconds / s.wall_seconds,
            identical=result.tokens == base.tokens,
        ))
        log(format_row(rows[-1]))
    return base, rows


HEADER = ("K", "time s", "target passes", "draft passes", "accepted/verify",
          "tokens/verify", "speed-up", "identical")


def format_row(r: SweepRow) -> str:
    return (f"| {r.k} | {r.wall_seconds:.2f} | {r.target_passes} | {r.draft_passes} | "
            f"{r.accepted_per_verify:.2f} | {r.tokens_per_verify:.2f} | {r.speedup:.2f}x | "
            f"{'yes' if r.identical else 'NO'} |")


def markdown_table(base: DecodeResult, rows: list[SweepRow]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER),
             f"| baseline | {base.stats.wall_seconds:.2f} | {base.stats.forward_passes} | 0 | "
             "- | 1.00 | 1.00x | yes |"]
    lines += [format_row(r) for r in rows]
    return "\n".join(lines)


def write_outputs(out: Path, base: DecodeResult, rows: list[SweepRow]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "ksweep.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0]).keys()) if rows else ["k"])
        writer.writeheader()
        writer.writerow({"k": "baseline", "wall_seconds": base.stats.wall_seconds,
                         "target_passes": base.stats.forward_passes, "draft_passes": 0,
                         "verification_steps": 0, "accepted_per_verify": 0,
                         "tokens_per_verify": 1, "output_tokens": base.stats.output_tokens,
                         "speedup": 1.0, "identical": True})
        for r in rows:
            writer.writerow(asdict(r))
    (out / "ksweep.md").write_text(markdown_table(base, rows) + "\n")
    plot(out / "ksweep.png", base, rows)


def plot(path: Path, base: DecodeResult, rows: list[SweepRow]) -> None:
    require_extra("bench", "matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fixed = [r for r in rows if r.k != "auto"]
    ks = [int(r.k) for r in fixed]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = [
        ("wall time (s)", [r.wall_seconds for r in fixed], base.stats.wall_seconds),
        ("target forward passes", [r.target_passes for r in fixed], base.stats.forward_passes),
        ("accepted draft tokens / verification", [r.accepted_per_verify for r in fixed], None),
    ]
    auto = next((r for r in rows if r.k == "auto"), None)
    auto_values = ([auto.wall_seconds, auto.target_passes, auto.accepted_per_verify]
                   if auto else [None] * 3)
    for ax, (title, values, baseline), auto_value in zip(axes, panels, auto_values, strict=True):
        ax.plot(ks, values, marker="o", label="fixed K")
        if baseline is not None:
            ax.axhline(baseline, color="gray", linestyle="--", label="target alone")
        if auto_value is not None:
            ax.axhline(auto_value, color="tab:green", linestyle=":", label="adaptive K")
        ax.set_xlabel("K (draft tokens per verification)")
        ax.set_title(title)
        ax.set_xticks(ks)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_cli(args: argparse.Namespace) -> int:
    ks = [k.strip() for k in args.k.split(",") if k.strip()]
    for k in ks:  # a bad K fails before the models load
        method_for_k(k)
    target = load_model(args.target, args.device, args.dtype, threads=args.threads)
    draft = load_model(args.draft, args.device, args.dtype, threads=args.threads)
    base, rows = sweep(target, draft, args.prompt, args.max_new_tokens, ks)
    write_outputs(args.out, base, rows)
    print(markdown_table(base, rows))
    print(f"wrote {args.out}/ksweep.csv, ksweep.md, ksweep.png")
    return 0 if all(r.identical for r in rows) else 1
