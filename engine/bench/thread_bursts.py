"""`--threads auto` when the machine's load changes during a rewrite.

An optional slow benchmark (never in CI): `python -m engine.bench.thread_bursts --model M
--task T`. One rewrite with speculative edits, the thread count chosen by `auto`, while
another process spins on a core (the developer's build or test run): either for the first
seconds of the rewrite (`burst ends`) or from a few seconds in (`burst starts`). Each runs
with the thread count fixed when the rewrite starts, and with the ThreadGovernor looking
again between passes (engine/threads.py), alternately, `--repeats` times. Prints a table and
checks that every run wrote the same text.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time

from engine.contract import default_model

from .servers import spin_command
from .tasks import find_data_dir, load_canitedit, select

SCENARIOS = ("burst ends", "burst starts")
MODES = ("fixed at start", "governor")
BURST_SECONDS = 2.0


class Spinner:
    """Another process keeping one core busy, started and stopped at will."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(spin_command())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def no_governor(setting: str | int) -> None:
    """What `thread_governor` gives for a fixed count: the count chosen at the start stays."""
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.thread_bursts",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=default_model())
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--task", default="17_quiz")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    import engine.rewriting.rewrite as rewriting
    from engine.model.loading import load_model

    rewrite = rewriting.rewrite
    governed = rewriting.thread_governor
    task = select(load_canitedit(find_data_dir(None)), args.task, None)[0]
    loaded = load_model(args.model, "cpu", args.dtype, threads="auto")

    def run(mode: str, scenario: str) -> tuple[float, int, str]:
        # The engine's own code path; "fixed at start" only leaves out the governor.
        rewriting.thread_governor = governed if mode == "governor" else no_governor
        spinner = Spinner()
        if scenario == "burst ends":
            spinner.start()
            time.sleep(0.5)  # spinning before the rewrite looks at the cores
            timer = threading.Timer(BURST_SECONDS, spinner.stop)
        else:
            timer = threading.Timer(BURST_SECONDS, spinner.start)
        timer.start()
        try:
            started = time.perf_counter()
            result = rewrite(loaded, task.code, task.instruction, language=task.language,
                             method="speculative")
            return time.perf_counter() - started, result.stats.forward_passes, result.text
        finally:
            timer.cancel()
            timer.join()
            spinner.stop()
            rewriting.thread_governor = governed

    rewrite(loaded, task.code, task.instruction, language=task.language)  # warm-up, curve
    texts = set()
    print(f"{args.model}, {args.dtype}, {task.id}, --threads auto\n")
    print("| load | threads | seconds | passes |\n|---|---|---|---|")
    for _ in range(args.repeats):
        for scenario in SCENARIOS:
            for mode in MODES:
                time.sleep(2.0)  # let the last run's load settle
                seconds, passes, text = run(mode, scenario)
                texts.add(text)
                print(f"| {scenario} | {mode} | {seconds:.1f} | {passes} |", flush=True)
    print(f"\n{len(texts)} distinct output(s) over all runs")
    return 0 if len(texts) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
