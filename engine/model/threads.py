"""How many CPU threads a rewrite's forward passes use.

On a quiet machine a second thread makes a rewrite faster, but when another process keeps a
core busy, every parallel region waits for the thread that shares that core, and two threads
run slower than one (engine/bench/results/README.md, "Threads").

So the default, `auto`, looks at the cores before each rewrite: it samples how busy each core
this process may use is over SAMPLE_SECONDS (/proc/stat; the engine is idle then, so the busy
time is other processes') and runs on as many threads as there are idle cores, at least one.
During the rewrite a ThreadGovernor looks again between passes, at most every
RECHECK_SECONDS: the cores' busy time minus this process's own CPU time is what others used,
so a build that starts or ends mid-rewrite changes the count for the rest of it. (The count
does not change the output: a float32 pass of the 0.5B model gives bit-identical logits on
one and two threads.) A number fixes the count; it is what tests and reproducible benchmarks
use. Off Linux, `auto` keeps torch's own default.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence

from engine.contract import DEFAULT_THREADS, THREADS_ENV, InvalidRequestError

AUTO = DEFAULT_THREADS
# Long enough to see a busy core (a scheduler tick is 1-4 ms), short against a rewrite.
SAMPLE_SECONDS = 0.05
# A core counts as idle when at least this share of it was free during the sample.
IDLE_SHARE = 0.7

# How often, at most, the governor looks again during a rewrite (a pass takes 0.05-0.5 s).
RECHECK_SECONDS = 1.0

CpuTimes = dict[int, tuple[int, int]]  # cpu index -> (busy jiffies, total jiffies)


def parse_threads(text: str | int | None) -> str | int:
    """`auto` or a positive thread count, from a flag, a setting or the environment."""
    if text is None or text == "":
        return AUTO
    if isinstance(text, int):
        value = text
    elif text.strip().lower() == AUTO:
        return AUTO
    elif text.strip().isdigit():
        value = int(text.strip())
    else:
        raise InvalidRequestError(f"bad thread count {text!r}: use auto or a number >= 1",
                                  field="threads")
    if value < 1:
        raise InvalidRequestError(f"bad thread count {value}: use auto or a number >= 1",
                                  field="threads")
    return value


def threads_setting(flag: str | int | None = None) -> str | int:
    """The flag if given, else SPECEDIT_THREADS, else auto."""
    return parse_threads(flag if flag not in (None, "") else os.environ.get(THREADS_ENV))


def read_cpu_times(path: str = "/proc/stat") -> CpuTimes:
    """Busy and total jiffies per CPU (empty where /proc/stat cannot be read)."""
    times: CpuTimes = {}
    try:
        with open(path) as stat:
            for line in stat:
                name, _, rest = line.partition(" ")
                if not name.startswith("cpu") or name == "cpu":
                    continue
                fields = [int(x) for x in rest.split()]
                # user nice system idle iowait irq softirq steal ...: idle and iowait are free.
                free = fields[3] + (fields[4] if len(fields) > 4 else 0)
                total = sum(fields[:8])
                times[int(name[3:])] = (total - free, total)
    except (OSError, ValueError, IndexError):
        return {}
    return times


def idle_cores(before: CpuTimes, after: CpuTimes, allowed: Sequence[int]) -> int | None:
    """How many of `allowed` CPUs were mostly idle between two readings (None: unknown)."""
    idle = 0
    seen = 0
    for cpu in allowed:
        if cpu not in before or cpu not in after:
            continue
        busy = after[cpu][0] - before[cpu][0]
        total = after[cpu][1] - before[cpu][1]
        if total <= 0:
            continue  # no tick on this CPU in the sample: it tells nothing
        seen += 1
        idle += (total - busy) / total >= IDLE_SHARE
    return idle if seen else None


def allowed_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def choose_threads(setting: str | int, *,
                   read: Callable[[], CpuTimes] = read_cpu_times,
                   sleep: Callable[[float], None] = time.sleep) -> int | None:
    """The thread count for the next rewrite (None: leave torch's as it is)."""
    if setting != AUTO:
        return int(setting)
    cpus = allowed_cpus()
    before = read()
    if not before:
        return None
    sleep(SAMPLE_SECONDS)
    idle = idle_cores(before, read(), cpus)
    if idle is None:
        return None
    return max(1, min(idle, len(cpus)))


def apply_threads(setting: str | int) -> int:
    """Set torch's thread count for the next rewrite; returns the count in use."""
    import torch

    threads = choose_threads(setting)
    if threads is not None and threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def others_busy_cores(before: CpuTimes, after: CpuTimes, allowed: Sequence[int],
                      own_seconds: float, wall_seconds: float) -> float | None:
    """Cores' worth of `allowed` CPU time that other processes used between two readings.

    The busy jiffies of the allowed CPUs, less this process's own CPU time over the same
    wall time (None: unknown)."""
    if wall_seconds <= 0:
        return None
    busy = [after[c][0] - before[c][0] for c in allowed if c in before and c in after]
    if not busy:
        return None
    hertz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return max(0.0, sum(busy) / hertz - own_seconds) / wall_seconds


def threads_for(others: float, cpus: int) -> int:
    """Threads for the cores others leave free: a core counts as free when at least
    IDLE_SHARE of it is (as before a rewrite), at least one thread."""
    taken = max(0, math.ceil(others - (1 - IDLE_SHARE)))
    return max(1, min(cpus, cpus - taken))


class ThreadGovernor:
    """Re-chooses torch's thread count between the passes of one rewrite (`auto` only)."""

    def __init__(self, *, read: Callable[[], CpuTimes] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 own_cpu: Callable[[], float] = time.process_time,
                 set_threads: Callable[[int], None] | None = None) -> None:
        self.read, self.clock, self.own_cpu = read or read_cpu_times, clock, own_cpu
        self.set_threads = set_threads or _set_torch_threads
        self.cpus = allowed_cpus()
        self.changes = 0
        self._mark()

    def _mark(self) -> None:
        self.before, self.own_before, self.at = self.read(), self.own_cpu(), self.clock()

    def tick(self) -> int | None:
        """Called before a pass: the new count when it changed, else None."""
        now = self.clock()
        if now - self.at < RECHECK_SECONDS:
            return None
        after, own = self.read(), self.own_cpu()
        others = others_busy_cores(self.before, after, self.cpus, own - self.own_before,
                                   now - self.at)
        self.before, self.own_before, self.at = after, own, now
        if others is None:
            return None
        threads = threads_for(others, len(self.cpus))
        import torch

        if threads == torch.get_num_threads():
            return None
        self.set_threads(threads)
        self.changes += 1
        return threads


def _set_torch_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)


def thread_governor(setting: str | int) -> ThreadGovernor | None:
    """A governor for the next rewrite where `auto` can see the cores, else None."""
    if setting != AUTO:
        return None
    governor = ThreadGovernor()
    return governor if governor.before else None  # no /proc/stat: nothing to govern by
