"""Speculative edits against llama.cpp's llama-server on the same GGUF file, side by side.

An optional slow benchmark (never in CI). llama-server is what most people run local models
with on a CPU (directly, or under Ollama and LM Studio). PyPI has no prebuilt binary that
fits; the `build` command compiles it once from the llama.cpp vendored in the
llama-cpp-python sdist, into a folder of its own:

    python -m engine.bench.llama_server build [--dir DIR]          # about 8 minutes on 2 cores
    python -m engine.bench.llama_server run --model qwen2.5-coder-0.5b-instruct [--limit 20]
    python -m engine.bench.llama_server remote --model qwen2.5-coder-0.5b-instruct [--limit 5]

`run` loads the catalog model in process (every default of `specedit`), then for each
condition (`quiet`, and `busy`: another process spins on one core) and each speculative type
of llama-server (`none`, `ngram-simple`, `ngram-mod`) starts a fresh server on the same GGUF
and, for every task, times our speculative rewrite right before the server's completion of
the very same prompt token ids (`/completion`, temperature 0, stopping at the closing
fence). Our greedy runs once per task, quiet, as the reference text.

`remote` checks the language server's remote engine against llama-server's OpenAI API (what
a team without a GPU would run): each task is rewritten through `specedit.endpoint`'s path
(engine.rewriting.remote) with the selection sent as `prediction`, and again without it (the
server's own greedy); the texts must be the same. The server runs with --no-cache-prompt:
with its default, a request that reuses the cached prompt of the request before gets
logits that differ slightly from a fresh prefill, so two identical requests can get
different text at a near-tie (seen on 11_fibonacci), whatever the prediction.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from engine.contract import default_model

from .servers import SETTLE_SECONDS, server, spinner
from .tasks import Task, find_data_dir, load_canitedit, load_worked_example, select

SDIST = "llama-cpp-python==0.3.36"
SPEC_TYPES = ("none", "ngram-simple", "ngram-mod")
CLOSING_FENCE = "\n```"


def default_dir() -> Path:
    from engine.model.catalog import cache_root

    return cache_root() / "peers" / "llama.cpp"


def binary(folder: Path) -> Path:
    return folder / "build" / "bin" / "llama-server"


def build(folder: Path) -> Path:
    """Download the sdist, unpack its vendored llama.cpp into `folder`, build llama-server."""
    if binary(folder).is_file():
        return binary(folder)
    with tempfile.TemporaryDirectory() as download:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "--no-binary=:all:", SDIST, "-d", download], check=True)
        (archive,) = Path(download).glob("llama_cpp_python-*.tar.gz")
        subprocess.run(["tar", "xzf", str(archive), "-C", download], check=True)
        (vendored,) = Path(download).glob("llama_cpp_python-*/vendor/llama.cpp")
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(vendored), folder)
    subprocess.run(["cmake", "-S", str(folder), "-B", str(folder / "build"),
                    "-DGGML_NATIVE=ON", "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TESTS=OFF",
                    "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_CURL=OFF",
                    "-DCMAKE_BUILD_TYPE=Release"], check=True)
    subprocess.run(["cmake", "--build", str(folder / "build"), "--target", "llama-server",
                    "llama-bench", f"-j{os.cpu_count() or 2}"], check=True)
    return binary(folder)


@dataclass
class Row:
    condition: str
    task: str
    server: str  # the llama-server type this pair belongs to
    method: str  # ours:greedy, ours:speculative, or llama-server:TYPE
    prompt_tokens: int
    output_tokens: int
    forward_passes: int | str  # ours only
    drafted_tokens: int | str
    accepted_tokens: int | str
    wall_seconds: float
    identical_to_own_greedy: bool | str  # ours against our greedy, theirs against theirs


def server_command(path: Path, gguf: Path, port: int, spec_type: str,
                   threads: int | None, *extra: str) -> list[str]:
    command = [str(path), "-m", str(gguf), "-c", "8192", "-np", "1", "--host", "127.0.0.1",
               "--port", str(port), "--spec-type", spec_type, *extra]
    if threads is not None:
        command += ["-t", str(threads), "-tb", str(threads)]
    return command


def complete(url: str, prompt: list[int], max_tokens: int) -> tuple[dict, float]:
    """llama-server's greedy completion of `prompt` (token ids) up to the closing fence."""
    body = {"prompt": prompt, "n_predict": max_tokens, "temperature": 0, "top_k": 1,
            "samplers": ["top_k"], "stop": [CLOSING_FENCE], "cache_prompt": False,
            "return_tokens": True}
    started = time.perf_counter()
    response = httpx.post(f"{url}/completion", json=body, timeout=httpx.Timeout(1800.0))
    response.raise_for_status()
    return response.json(), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.llama_server",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="build llama-server once from the sdist")
    b.add_argument("--dir", type=Path, default=None, help="where (default: under the cache)")
    r = commands.add_parser("run", help="time ours against llama-server, paired per task")
    r.add_argument("--model", default=default_model(), help="a catalog model (its GGUF)")
    r.add_argument("--llama-server", type=Path, default=None,
                   help="the binary (default: the one `build` makes)")
    r.add_argument("--spec-types", default=",".join(SPEC_TYPES))
    r.add_argument("--conditions", default="quiet,busy")
    r.add_argument("--limit", type=int, default=20, help="CanItEdit tasks (first N)")
    r.add_argument("--tasks", default=None, help="comma-separated task ids instead")
    r.add_argument("--no-example", action="store_true", help="leave out the worked example")
    r.add_argument("--server-threads", type=int, default=None,
                   help="llama-server's -t (default: its own default)")
    r.add_argument("--data", type=Path, default=None)
    r.add_argument("--port", type=int, default=8013)
    r.add_argument("--out", type=Path, default=Path("llama-server-out"))
    m = commands.add_parser("remote", help="the remote engine against llama-server's API")
    m.add_argument("--model", default=default_model(), help="a catalog model (its GGUF)")
    m.add_argument("--llama-server", type=Path, default=None)
    m.add_argument("--limit", type=int, default=5)
    m.add_argument("--tasks", default=None)
    m.add_argument("--data", type=Path, default=None)
    m.add_argument("--port", type=int, default=8013)
    m.add_argument("--out", type=Path, default=Path("llama-server-remote"))
    args = parser.parse_args(argv)
    if args.command == "build":
        print(build(args.dir or default_dir()))
        return 0
    if args.command == "remote":
        return remote(args)
    return run(args)


def _binary(args: argparse.Namespace) -> Path:
    path = args.llama_server or binary(default_dir())
    if not path.is_file():
        raise SystemExit(f"no llama-server at {path}: run `python -m engine.bench.llama_server "
                         "build` first, or pass --llama-server")
    return path


def remote(args: argparse.Namespace) -> int:
    import asyncio

    from engine.model import catalog
    from engine.rewriting.endpoint import Endpoint
    from engine.rewriting.remote import remote_rewrite

    path = _binary(args)
    data = find_data_dir(args.data)
    tasks = select(load_canitedit(data), args.tasks, args.limit) + [load_worked_example(data)]
    gguf = catalog.ensure_gguf(args.model)
    url = f"http://127.0.0.1:{args.port}/v1"
    endpoint = Endpoint(url, args.model, None, None)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["| task | with prediction: seconds | without: seconds | same text | "
             "prediction sent | answer primed |", "|---|---|---|---|---|---|"]
    same = 0

    async def one(task: Task, prediction: bool) -> tuple[str, float, bool, bool]:
        notes: list[str] = []
        async with httpx.AsyncClient(timeout=httpx.Timeout(1800.0)) as client:
            result = await remote_rewrite(client, endpoint, task.code, task.instruction,
                                          language=task.language, prediction=prediction,
                                          log=notes.append)
        return result.text, result.stats.wall_seconds, result.prediction_sent, result.primed

    command = server_command(path, gguf, args.port, "none", None, "--no-cache-prompt")
    with server(command, url, args.out / "server.log", {}):
        for task in tasks:
            text, seconds, sent, primed = asyncio.run(one(task, True))
            plain, plain_seconds, _, _ = asyncio.run(one(task, False))
            same += text == plain
            lines.append(f"| {task.id} | {seconds:.1f} | {plain_seconds:.1f} | "
                         f"{text == plain} | {sent} | {primed} |")
            print(lines[-1], flush=True)
    lines.append(f"\n{same}/{len(tasks)} identical to the server's own greedy")
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print(lines[-1])
    return 0 if same == len(tasks) else 1


def run(args: argparse.Namespace) -> int:
    from engine.model import catalog
    from engine.model.loading import load_model
    from engine.rewriting.prompt import build_prompt
    from engine.rewriting.rewrite import rewrite

    path = _binary(args)
    data = find_data_dir(args.data)
    tasks: list[Task] = select(load_canitedit(data), args.tasks, args.limit)
    if not args.no_example:
        tasks.append(load_worked_example(data))
    gguf = catalog.ensure_gguf(args.model)
    loaded = load_model(args.model)  # every default
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []

    def add(row: Row) -> None:  # written as it comes: a crash keeps what was measured
        rows.append(row)
        write_rows(args.out, rows)

    def ours(task: Task, method: str) -> tuple[Row, list[int]]:
        time.sleep(SETTLE_SECONDS)
        result = rewrite(loaded, task.code, task.instruction, language=task.language,
                         method=method)
        s = result.stats
        return Row("", task.id, "", f"ours:{method}", s.prompt_tokens, s.output_tokens,
                   s.forward_passes, s.drafted_tokens, s.accepted_tokens,
                   round(s.wall_seconds, 3), ""), result.output_ids

    ours(tasks[0], "speculative")  # warm-up and the pass-cost curve, untimed
    greedy: dict[str, list[int]] = {}
    for task in tasks:
        row, tokens = ours(task, "greedy")
        greedy[task.id] = tokens
        row.condition, row.identical_to_own_greedy = "quiet", True
        add(row)
        print(f"ours greedy {task.id}: {row.wall_seconds:.1f} s", flush=True)

    url = f"http://127.0.0.1:{args.port}"
    theirs_greedy: dict[str, str] = {}
    for condition in args.conditions.split(","):
        for spec_type in args.spec_types.split(","):
            command = server_command(path, gguf, args.port, spec_type, args.server_threads)
            # A fresh server per condition and type: nothing learnt from an earlier request.
            with server(command, f"{url}/v1", args.out / f"{spec_type}-{condition}.log", {}), \
                    spinner(condition == "busy"):
                for task in tasks:
                    row, tokens = ours(task, "speculative")
                    row.condition, row.server = condition, spec_type
                    row.identical_to_own_greedy = tokens == greedy[task.id]
                    add(row)
                    prompt = build_prompt(loaded.tokenizer, task.code, task.instruction,
                                          language=task.language, model=loaded.model)
                    time.sleep(SETTLE_SECONDS)
                    answer, seconds = complete(url, prompt.prompt_ids,
                                               max(256, 2 * len(prompt.draft_ids) + 128))
                    text = answer.get("content", "")
                    if spec_type == "none" and condition == args.conditions.split(",")[0]:
                        theirs_greedy[task.id] = text
                    timings = answer.get("timings") or {}
                    add(Row(condition, task.id, spec_type, f"llama-server:{spec_type}",
                            int(answer.get("tokens_evaluated") or len(prompt.prompt_ids)),
                            int(answer.get("tokens_predicted") or 0), "",
                            timings.get("draft_n", ""), timings.get("draft_n_accepted", ""),
                            round(seconds, 3),
                            theirs_greedy.get(task.id) == text if task.id in theirs_greedy
                            else ""))
                    print(f"{condition} {task.id} {spec_type}: {seconds:.1f} s "
                          f"(ours {row.wall_seconds:.1f} s)", flush=True)
    (args.out / "summary.md").write_text(summary(rows))
    print(summary(rows))
    return 0


def write_rows(out: Path, rows: list[Row]) -> None:
    with open(out / "rows.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)


def summary(rows: list[Row]) -> str:
    """Per condition and method: total seconds, the median and worst paired ratio (the
    server's seconds over ours, timed just before it on the same task), tasks where we were
    more than 10% behind, and output tokens."""
    lines = ["| condition | method | tasks | total s | ours, paired, total s | "
             "median ratio (theirs / ours) | worst ratio | tasks >10% behind | output tokens |",
             "|---|---|---|---|---|---|---|---|---|"]
    greedy = [r for r in rows if r.method == "ours:greedy"]
    lines.append(f"| quiet | ours:greedy | {len(greedy)} | "
                 f"{sum(r.wall_seconds for r in greedy):.1f} | | | | | "
                 f"{sum(r.output_tokens for r in greedy)} |")
    for condition in dict.fromkeys(r.condition for r in rows if r.server):
        for spec_type in dict.fromkeys(r.server for r in rows if r.server):
            pair = [r for r in rows if r.condition == condition and r.server == spec_type]
            ours = {r.task: r for r in pair if r.method == "ours:speculative"}
            theirs = [r for r in pair if r.method != "ours:speculative" and r.task in ours]
            if not theirs:
                continue
            ratios = [t.wall_seconds / ours[t.task].wall_seconds for t in theirs]
            behind = sum(ratio < 1 / 1.1 for ratio in ratios)
            lines.append(
                f"| {condition} | llama-server:{spec_type} | {len(theirs)} | "
                f"{sum(t.wall_seconds for t in theirs):.1f} | "
                f"{sum(ours[t.task].wall_seconds for t in theirs):.1f} | "
                f"{statistics.median(ratios):.2f} | {min(ratios):.2f} | {behind} | "
                f"{sum(t.output_tokens for t in theirs)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
