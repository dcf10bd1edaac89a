"""The thread count of forward passes: `auto` runs on the idle cores, a number is fixed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine.contract import THREADS_ENV, InvalidRequestError
from engine.model.threads import (
    AUTO,
    RECHECK_SECONDS,
    ThreadGovernor,
    apply_threads,
    choose_threads,
    idle_cores,
    others_busy_cores,
    parse_threads,
    read_cpu_times,
    thread_governor,
    threads_for,
    threads_setting,
)
from tests.helpers.tiny_models import make_tiny_model_dir


def test_parse_threads() -> None:
    assert parse_threads("auto") == AUTO
    assert parse_threads(" AUTO ") == AUTO
    assert parse_threads(None) == AUTO
    assert parse_threads("3") == 3
    assert parse_threads(2) == 2
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(InvalidRequestError, match="auto or a number"):
            parse_threads(bad)


def test_flag_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, "3")
    assert threads_setting(None) == 3
    assert threads_setting("1") == 1
    monkeypatch.delenv(THREADS_ENV)
    assert threads_setting(None) == AUTO


def test_idle_cores_counts_cores_mostly_free() -> None:
    before = {0: (100, 1000), 1: (100, 1000), 2: (100, 1000)}
    after = {0: (195, 1100),  # 95 of 100 jiffies busy
             1: (110, 1100),  # 10 busy: idle
             2: (125, 1100)}  # 25 busy: idle (at least 70% free)
    assert idle_cores(before, after, [0, 1, 2]) == 2
    assert idle_cores(before, after, [0]) == 0
    assert idle_cores(before, after, [1, 2]) == 2
    # CPUs outside the process's affinity are not counted; no tick means no evidence.
    assert idle_cores(before, {**after, 1: (100, 1000)}, [1]) is None


def _readings(*values: dict[int, tuple[int, int]]):  # type: ignore[no-untyped-def]
    it = iter(values)
    return lambda: next(it)


def test_auto_takes_the_idle_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("engine.model.threads.allowed_cpus", lambda: [0, 1])
    slept: list[float] = []
    quiet = _readings({0: (0, 100), 1: (0, 100)}, {0: (2, 200), 1: (3, 200)})
    assert choose_threads(AUTO, read=quiet, sleep=slept.append) == 2
    one_busy = _readings({0: (0, 100), 1: (0, 100)}, {0: (100, 200), 1: (3, 200)})
    assert choose_threads(AUTO, read=one_busy, sleep=slept.append) == 1
    all_busy = _readings({0: (0, 100), 1: (0, 100)}, {0: (100, 200), 1: (99, 200)})
    assert choose_threads(AUTO, read=all_busy, sleep=slept.append) == 1  # never zero
    assert slept and all(s < 0.2 for s in slept)  # a short sample, not a long wait
    # Unreadable /proc/stat (not Linux): torch's own default stays.
    assert choose_threads(AUTO, read=lambda: {}, sleep=slept.append) is None
    # A number is taken as it is, without sampling anything.
    assert choose_threads(3, read=lambda: pytest.fail("sampled"), sleep=slept.append) == 3


def test_read_cpu_times_parses_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 0 10 80 0 0 0 0 0 0\n"
                    "cpu0 5 1 4 40 2 0 0 0 0 0\n"
                    "cpu1 3 0 2 50 0 1 0 0 0 0\n"
                    "intr 12345\n")
    assert read_cpu_times(str(stat)) == {0: (10, 52), 1: (6, 56)}
    assert read_cpu_times(str(tmp_path / "missing")) == {}


@pytest.mark.needs("two-cpus")
@pytest.mark.skipif(not Path("/proc/stat").exists() or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux and two CPUs")
def test_auto_leaves_out_a_core_another_process_keeps_busy() -> None:
    """A real spinner pinned to one of our CPUs: `auto` does not count that CPU as idle."""
    cpus = sorted(os.sched_getaffinity(0))
    spinner = subprocess.Popen([sys.executable, "-c",
                                f"import os; os.sched_setaffinity(0, {{{cpus[0]}}})\n"
                                "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        assert choose_threads(AUTO) <= len(cpus) - 1  # type: ignore[operator]
    finally:
        spinner.kill()
        spinner.wait()


def test_apply_threads_sets_torch() -> None:
    before = torch.get_num_threads()
    try:
        assert apply_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_rewrite_runs_on_the_loaded_models_thread_setting(tiny_chat_model_dir: Path) -> None:
    from engine import load_model, rewrite

    before = torch.get_num_threads()
    try:
        loaded = load_model(str(tiny_chat_model_dir), "cpu", "float32", threads=1)
        assert loaded.threads == 1
        torch.set_num_threads(2)
        rewrite(loaded, "x = 1\n", "rename x to y", method="greedy", max_new_tokens=3)
        assert torch.get_num_threads() == 1
        with pytest.raises(InvalidRequestError, match="auto or a number"):
            load_model(str(tiny_chat_model_dir), "cpu", "float32", threads="many")
    finally:
        torch.set_num_threads(before)


CODE = '''\
def area(radius):
    r2 = radius * radius
    return 3.14159 * r2


def perimeter(radius):
    return 2 * 3.14159 * radius
'''


def test_the_output_does_not_depend_on_the_thread_count(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One thread, two, and a count the governor flips before every pass of the rewrite give
    the same tokens. The model is wider than the tests' usual 64 so that torch splits its
    matmuls across threads at all."""
    from engine import load_model, rewrite

    model_dir = make_tiny_model_dir(tmp_path / "wide", "qwen2", hidden=256)
    flips: list[int] = []

    class Flipping(ThreadGovernor):
        """Changes the count before every pass, as a busy machine can between passes."""

        def tick(self) -> int | None:
            count = 2 if torch.get_num_threads() == 1 else 1
            torch.set_num_threads(count)
            flips.append(count)
            return count

    monkeypatch.setattr("engine.rewriting.prepare.thread_governor",
                        lambda setting: Flipping() if setting == AUTO else None)
    before = torch.get_num_threads()
    try:
        results = {}
        for threads in (1, 2, AUTO):
            loaded = load_model(str(model_dir), "cpu", "float32", threads=threads)
            results[threads] = rewrite(loaded, CODE, "Add type hints", method="speculative",
                                       max_new_tokens=80)
    finally:
        torch.set_num_threads(before)
    assert results[1].output_ids == results[2].output_ids == results[AUTO].output_ids
    assert results[1].text == results[2].text == results[AUTO].text
    assert len(flips) == results[AUTO].stats.forward_passes > 2  # both counts, in turn


HZ = os.sysconf("SC_CLK_TCK")


def test_others_busy_cores_is_the_cores_busy_time_less_our_own() -> None:
    before = {0: (0, 0), 1: (0, 0)}
    after = {0: (HZ, 2 * HZ), 1: (HZ, 2 * HZ)}  # two cores busy half of two seconds
    assert others_busy_cores(before, after, [0, 1], own_seconds=2.0, wall_seconds=2.0) == 0.0
    assert others_busy_cores(before, after, [0, 1], own_seconds=1.0, wall_seconds=2.0) == 0.5
    assert others_busy_cores(before, after, [0], own_seconds=0.0, wall_seconds=2.0) == 0.5
    assert others_busy_cores(before, after, [5], own_seconds=0.0, wall_seconds=2.0) is None
    assert others_busy_cores(before, after, [0], own_seconds=0.0, wall_seconds=0.0) is None


def test_threads_for_leaves_out_the_cores_others_use() -> None:
    assert threads_for(0.0, 2) == 2
    assert threads_for(0.25, 2) == 2  # a core 75% free counts as free, as before a rewrite
    assert threads_for(0.5, 2) == 1
    assert threads_for(1.0, 2) == 1
    assert threads_for(2.0, 2) == 1  # never zero
    assert threads_for(1.5, 4) == 2


class FakeMachine:
    """Clock, /proc/stat and our CPU time of a 2-core machine, advanced by the test."""

    def __init__(self) -> None:
        self.now = 0.0
        self.busy = 0.0  # seconds of busy CPU time, ours and others', over both cores
        self.own = 0.0

    def run(self, seconds: float, ours: float, others: float) -> None:
        self.now += seconds
        self.own += ours * seconds
        self.busy += (ours + others) * seconds

    def read(self) -> dict[int, tuple[int, int]]:
        half = int(self.busy * HZ / 2)
        total = int(self.now * HZ)
        return {0: (half, total), 1: (half, total)}


def test_the_governor_follows_a_burst_between_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("engine.model.threads.allowed_cpus", lambda: [0, 1])
    machine = FakeMachine()
    counts: list[int] = []
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        governor = ThreadGovernor(read=machine.read, clock=lambda: machine.now,
                                  own_cpu=lambda: machine.own,
                                  set_threads=lambda n: (counts.append(n),
                                                         torch.set_num_threads(n)))
        machine.run(0.3, ours=2.0, others=0.0)
        assert governor.tick() is None  # too soon to look again
        machine.run(RECHECK_SECONDS + 0.01, ours=1.2, others=0.8)  # a build starts on one core
        assert governor.tick() == 1 and torch.get_num_threads() == 1
        machine.run(RECHECK_SECONDS + 0.01, ours=1.0, others=1.0)
        assert governor.tick() is None  # still busy: stays at one
        machine.run(RECHECK_SECONDS + 0.01, ours=1.0, others=0.05)  # the build ended
        assert governor.tick() == 2 and torch.get_num_threads() == 2
        assert counts == [1, 2] and governor.changes == 2
    finally:
        torch.set_num_threads(before)


def test_a_governor_only_for_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    assert thread_governor(2) is None
    monkeypatch.setattr("engine.model.threads.read_cpu_times", lambda: {})
    assert thread_governor(AUTO) is None  # no /proc/stat: nothing to govern by


def test_an_auto_rewrite_asks_the_governor_before_every_pass(
        tiny_chat_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import load_model, rewrite

    ticks: list[int] = []

    class Counting(ThreadGovernor):
        def tick(self) -> int | None:
            ticks.append(1)
            return None

    monkeypatch.setattr("engine.rewriting.prepare.thread_governor",
                        lambda setting: Counting() if setting == AUTO else None)
    before = torch.get_num_threads()
    try:
        loaded = load_model(str(tiny_chat_model_dir), "cpu", "float32", threads=AUTO)
        result = rewrite(loaded, "x = 1\n", "rename x to y", method="greedy",
                         max_new_tokens=5)
        assert len(ticks) == result.stats.forward_passes > 0
        ticks.clear()
        fixed = load_model(str(tiny_chat_model_dir), "cpu", "float32", threads=1)
        rewrite(fixed, "x = 1\n", "rename x to y", method="greedy", max_new_tokens=5)
        assert ticks == []
    finally:
        torch.set_num_threads(before)
