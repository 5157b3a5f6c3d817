"""Measuring commands side by side on a shared machine: wall-clock time, CPU time, and how busy the rest was.

Wall-clock time is what a user waits for, but on a machine other work shares
it moves with that work. CPU time (user + system, of this process's waited-for
children and everything they waited for) moves far less: it is the figure to
decide on. Each sample also records how many CPUs other processes kept busy
meanwhile, from /proc/stat less this process's own share, so a report can say
how quiet the machine was.

Ways to run are measured in alternating rounds: every round runs each way
once, the order reversed every other round, so drift touches all of them
alike and each ratio can be taken within one round.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds, perf_counter around the action
    cpu: float  # user + system seconds of the processes the action ran (and waited for)
    foreign: float  # CPUs other processes kept busy meanwhile (0: the machine was ours)


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (all processes, the kernel included); 0 off Linux."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return 0.0
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """User + system time of every process this one started and waited for (their own waited-for children included)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime + children_cpu_seconds()


def measured(action: Callable[[], None]) -> Sample:
    """One run of ``action``. Actions that run their commands in threads are counted too: the
    children are this process's, whichever thread waited for them."""
    busy, own, children = machine_busy_seconds(), own_cpu_seconds(), children_cpu_seconds()
    start = time.perf_counter()
    action()
    wall = time.perf_counter() - start
    cpu = children_cpu_seconds() - children
    foreign = (machine_busy_seconds() - busy) - (own_cpu_seconds() - own)
    return Sample(wall, cpu, max(0.0, foreign) / wall)


def alternate(ways: Mapping[str, Callable[[], None]], rounds: int, warmup: bool = True, label: str = "") -> dict[str, list[Sample]]:
    """Every way once per round, the order reversed every other round; an unmeasured round first when ``warmup``."""
    names = list(ways)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for number in range(-1 if warmup else 0, rounds):
        order = names if number % 2 == 0 else names[::-1]
        for name in order:
            sample = measured(ways[name])
            counted = number >= 0
            tag = f"{number + 1}/{rounds}" if counted else "warm-up"
            print(f"bench: {label}{tag} | {name}: {sample.wall:.2f} s wall, {sample.cpu:.2f} s CPU "
                  f"(other processes: {sample.foreign:.2f} CPUs)", file=sys.stderr, flush=True)
            if counted:
                samples[name].append(sample)
    return samples


def median_wall(samples: list[Sample]) -> float:
    return statistics.median(s.wall for s in samples)


def median_cpu(samples: list[Sample]) -> float:
    return statistics.median(s.cpu for s in samples)


def median_ratio(ours: list[Sample], floor: list[Sample], attribute: str = "wall") -> float:
    """The median of the per-round ratios: each run against the floor measured beside it."""
    return statistics.median(getattr(a, attribute) / getattr(b, attribute) for a, b in zip(ours, floor))
