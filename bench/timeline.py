"""When a warm parent's time goes: the moments of one run on one clock, and its children beside the floor.

The parent runs through :data:`DRIVER`, which notes the wall-clock time and
the process's own CPU time at a few moments (pytest imported, the first
``pytest_configure``, collection finished, the end) and the start and end of
every child (each child's end is seen through a pidfd, so noting it does not
reap the child). Times count from just before the benchmark starts the
process, so the first moment includes Python's own start.

What it answers: how long the parent works before its first child starts
(the time a second CPU has nothing to do with ``--envmatrix-jobs=1``), whether
a child costs more than ``python -m pytest`` in the same venv, and what the
run's end adds after the last child.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

DRIVER = r"""
import json, os, resource, select, subprocess, sys, threading, time
out = sys.argv.pop(1)
marks, children = [], []

def note(name):
    usage = resource.getrusage(resource.RUSAGE_SELF)
    marks.append((name, time.time(), usage.ru_utime + usage.ru_stime))

note("python")
popen = subprocess.Popen.__init__

def started(self, args, *a, **k):
    popen(self, args, *a, **k)
    if any(str(arg).endswith("_child.py") for arg in args[:2]):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        child = [time.time(), None, usage.ru_utime + usage.ru_stime]
        children.append(child)
        fd = os.pidfd_open(self.pid)

        def ended():
            select.select([fd], [], [])
            child[1] = time.time()
            os.close(fd)

        threading.Thread(target=ended, daemon=True).start()

subprocess.Popen.__init__ = started
import pytest
note("pytest")

class Moments:
    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config):
        note("configure")

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session):
        note("collected")

code = pytest.main(sys.argv[1:], plugins=[Moments()])
note("main")
with open(out, "w") as f:
    json.dump({"marks": marks, "children": children}, f)
sys.exit(code)
"""

MOMENTS = (
    ("python", "Python started (the driver's first line)"),
    ("pytest", "pytest imported"),
    ("configure", "pytest_configure, the first plugin's (options parsed, plugins and conftest.py files loaded)"),
    ("first child", "first child started"),
    ("collected", "collection finished (items made from the module records)"),
    ("last child", "last child ended"),
    ("main", "pytest.main returned (replay and summary done)"),
    ("ended", "the process ended (Python's shutdown)"),
)


def run_once(python: Path, args: Sequence[str], env: dict, cwd: Path, out: Path) -> dict:
    """One parent run: each moment's (milliseconds since its start, parent CPU milliseconds), and its children's spans."""
    begin = time.time()
    proc = subprocess.run([str(python), "-c", DRIVER, str(out), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    end = time.time()
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, [str(python), "<timeline driver>", *args])
    data = json.loads(out.read_text())
    moments = {name: ((t - begin) * 1000, cpu * 1000) for name, t, cpu in data["marks"]}
    spans = [((s - begin) * 1000, (e - begin) * 1000) for s, e, _cpu in data["children"] if e is not None]
    if not spans or len(spans) != len(data["children"]):
        raise RuntimeError("the timeline driver saw no child, or a child whose end it missed")
    first = min(data["children"])
    moments["first child"] = ((first[0] - begin) * 1000, first[2] * 1000)
    moments["last child"] = (max(e for _, e in spans), None)
    moments["ended"] = ((end - begin) * 1000, None)
    return {"moments": moments, "children": [e - s for s, e in spans]}


def timed(action: Callable[[], None]) -> float:
    begin = time.perf_counter()
    action()
    return (time.perf_counter() - begin) * 1000


def measure(parents: dict[str, Callable[[Path], dict]], floor_runs: Sequence[Callable[[], None]], rounds: int, out: Path) -> dict:
    """``rounds`` rounds, each: every parent once, then every floor run once, the order reversed every other round.

    One unmeasured run of each parent first: the counted ones find the page cache and the plan as it leaves them.
    """
    for parent in parents.values():
        parent(out)
    runs: dict[str, list[dict]] = {name: [] for name in parents}
    floor: list[float] = []
    steps = [lambda name=name, parent=parent: runs[name].append(parent(out)) for name, parent in parents.items()]
    steps.append(lambda: floor.extend(timed(run) for run in floor_runs))
    for index in range(rounds):
        for step in steps if index % 2 == 0 else steps[::-1]:
            step()
    return {"runs": runs, "floor": floor, "rounds": rounds}


def render(result: dict, title: str) -> list[str]:
    names = list(result["runs"])
    header = " | ".join(f"{name}: ms | parent CPU: ms" for name in names)
    lines = [
        f"Timeline of the marker-declared parent, {title}: milliseconds since the benchmark started the",
        f"process, and the parent's own CPU time by then (its threads, not its children); medians of {result['rounds']}",
        "alternating rounds (`--timeline`).",
        "",
        f"| moment | {header} |",
        "| --- |" + " --- | --- |" * len(names),
    ]
    for key, label in MOMENTS:
        cells = []
        for name in names:
            at = [run["moments"][key] for run in result["runs"][name] if key in run["moments"]]
            wall = statistics.median(m[0] for m in at)
            cpus = [m[1] for m in at if m[1] is not None]
            cells.append(f"{wall:,.0f} | {statistics.median(cpus):,.0f}" if cpus else f"{wall:,.0f} |")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    child = {name: statistics.median(d for run in result["runs"][name] for d in run["children"]) for name in names}
    spans = ", ".join(f"{child[name]:,.0f} ms with {name}" for name in names)
    lines += [
        "",
        f"A child, from its start to its end (median over the environments and rounds): {spans};",
        f"`python -m pytest` in one of the floor's venvs, run alone: {statistics.median(result['floor']):,.0f} ms.",
        "",
    ]
    return lines
