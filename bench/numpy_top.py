#!/usr/bin/env python
"""The shape real suites have, in one command: ``python bench/numpy_top.py``.

``bench/project_numpy_top``: the module under test and both test modules do
``import numpy`` at the top, 20 tests marked for numpy 1.26.4 / 2.0.2 / 2.1.3 /
2.2.6, no ``[project]`` table (so no project is installed: the module is found
through pytest's ``pythonpath``). Every environment is already built. Measured
against the floor (the same four uv venvs, ``python -m pytest`` in each): with
``--envmatrix-jobs=1`` against the floor in turn, with ``--envmatrix-jobs=2``
against the floor two at a time, with PYTHONDONTWRITEBYTECODE set and unset.

Two ways to declare the matrix:

- markers: the parent collects the test modules itself, so it imports numpy and
  the module under test; its venv has numpy 2.2.6 installed beside the plugin.
- suite-wide: the same tests without markers, under
  ``--envmatrix-axis=numpy=...``; the parent imports no test module, and its
  venv has no numpy (``bench/.work/parent``, as ``bench/run.py`` makes it).

The parent runs through a small driver that records its own CPU time
(``RUSAGE_SELF``), so each run's CPU time splits into the parent's and the
rest (children, supervisors). It writes its section into ``docs/performance.md``
between ``<!-- numpy-top -->`` and ``<!-- /numpy-top -->``; ``bench/run.py`` runs
it after its own sections and carries it over when it rewrites the file.

``--rounds N`` sets the alternating rounds per bytecode mode (default 7);
``--output`` another file; ``--profile`` adds a pyinstrument profile of the
marker-declared parent, ``--instructions`` instruction counts of its pieces,
``--timeline`` when its first child starts and what each child costs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import instructions
import measure
import numpy_top_report
import run as bench
import timeline

PROJECT = bench.BENCH / "project_numpy_top"
NUMPY_VERSIONS = ("1.26.4", "2.0.2", "2.1.3", "2.2.6")
PARENT_NUMPY = "2.2.6"  # the marker-declared parent imports the test modules, so it needs a numpy
COMMAND = "python bench/numpy_top.py"

# The parent pytest, run as `python -m pytest` would, recording the process's own CPU time on the way out.
PARENT_DRIVER = r"""
import json, os, resource, sys
import pytest
out = sys.argv.pop(1)
code = pytest.main(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_SELF)
with open(out, "w") as f:
    json.dump({"exit": int(code), "cpu": usage.ru_utime + usage.ru_stime}, f)
sys.exit(code)
"""


@dataclass(frozen=True)
class Way:
    """One command measured: a pytest-envmatrix run or a floor, and the floor it is held to."""

    name: str
    run: Callable[[dict], None]
    floor: str | None = None  # the Way it is compared with; None for the floors themselves
    parent_cpu: Callable[[], float] | None = None  # the last run's parent CPU seconds, for pytest-envmatrix runs


class Paths:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.root = work / "numpy-top"
        self.suite_project = self.root / "suite-project"
        self.cache = self.root / "envmatrix-cache"
        self.floor = self.root / "floor"
        self.parent_numpy = work / "parent-numpy"


def write_suite_project(paths: Paths) -> Path:
    """The same project with the markers taken out, for the suite-wide matrix."""
    dest = paths.suite_project
    bench.rmtree(dest)
    shutil.copytree(PROJECT, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for module in (dest / "tests").glob("test_*.py"):
        lines = module.read_text().splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith("pytestmark = pytest.mark.envmatrix(")]
        if len(kept) != len(lines) - 1:
            raise bench.BenchError(f"{module}: expected one module-level envmatrix marker to remove")
        module.write_text("".join(kept))
    return dest


def ensure_parent_with_numpy(paths: Paths) -> list[str]:
    """The marker-declared parent's venv: what ``bench/run.py``'s parent has, plus numpy."""
    venv = paths.parent_numpy
    requirements = ["-e", f"{bench.REPO}[uv]", bench.PYTEST_PIN, f"numpy=={PARENT_NUMPY}"]
    wanted = [*requirements, (bench.REPO / "pyproject.toml").read_text()]
    stamp = venv / "bench-requirements.json"
    if not (stamp.exists() and json.loads(stamp.read_text()) == wanted):
        print(f"bench: creating the parent's environment with numpy {venv}", file=sys.stderr)
        bench.rmtree(venv)
        env = bench.bench_env()
        bench.sh([bench.UV, "venv", "--python", bench.BASE_PYTHON, venv], env, paths.work, "numpy-top-parent")
        bench.sh([bench.UV, "pip", "install", "--compile-bytecode", "--python", bench.venv_python(venv), *requirements], env, paths.work, "numpy-top-parent")
        stamp.write_text(json.dumps(wanted))
    return [str(bench.venv_python(venv))]


def ensure_floor(paths: Paths) -> list[Path]:
    """One uv venv per numpy version with the benchmark's pytest: what pytest-envmatrix builds, made by hand.

    Byte-compiled, as pytest-envmatrix's environments are: with PYTHONDONTWRITEBYTECODE=1 a venv
    without bytecode would compile numpy on every run, which is no floor.
    """
    pythons = []
    env = bench.bench_env()
    for version in NUMPY_VERSIONS:
        venv = paths.floor / version
        python = bench.venv_python(venv)
        if not python.exists():
            bench.sh([bench.UV, "venv", "--python", bench.BASE_PYTHON, venv], env, paths.work, f"numpy-top-floor-{version}")
            bench.sh([bench.UV, "pip", "install", "--compile-bytecode", "--python", python, f"numpy=={version}", bench.PYTEST_PIN], env, paths.work, f"numpy-top-floor-{version}")
        compile_bytecode(python, venv)
        pythons.append(python)
    return pythons


def compile_bytecode(python: Path, *folders: Path) -> None:
    """Write the bytecode of every module in ``folders`` that lacks it (a no-op when all have it).

    Run before each measurement: an editable install's modules, edited since
    their bytecode was written, would otherwise be compiled on every run with
    PYTHONDONTWRITEBYTECODE=1, which an installed release never is.
    """
    # not checked: a package may ship a file that is not meant to compile (a template), and compileall then fails
    subprocess.run([str(python), "-m", "compileall", "-q", "-j0", *map(str, folders)], check=False, stdout=subprocess.DEVNULL)


def envmatrix_way(name: str, parent: list[str], project: Path, paths: Paths, *extra: str, floor: str) -> Way:
    cpu_file = paths.root / f"parent-cpu-{bench.slug(name)}.json"
    cmd = [*parent, "-c", PARENT_DRIVER, cpu_file, "--envmatrix", f"--envmatrix-cache-dir={paths.cache}", *bench.PYTEST_ARGS, *extra]

    def parent_cpu() -> float:
        data = json.loads(cpu_file.read_text())
        return float(data["cpu"])

    return Way(name, lambda env: bench.sh(cmd, env, project, f"numpy-top-{bench.slug(name)}"), floor=floor, parent_cpu=parent_cpu)


def floor_ways(pythons: list[Path]) -> list[Way]:
    def one(python: Path, env: dict, index: int) -> Callable[[], None]:
        return lambda: bench.sh([python, "-m", "pytest", *bench.PYTEST_ARGS, "tests"], env, PROJECT, f"numpy-top-floor-{index}")

    def actions(env: dict) -> list[Callable[[], None]]:
        return [one(python, env, i) for i, python in enumerate(pythons)]

    return [
        Way(bench.FLOOR_SEQ, lambda env: bench.in_turn(actions(env))),
        Way(bench.FLOOR_PAR, lambda env: bench.two_at_a_time(actions(env))),
    ]


MARKERS_J2 = "markers, --envmatrix-jobs=2"
MARKERS_J1 = "markers, --envmatrix-jobs=1"
SUITE_J2 = "suite-wide, --envmatrix-jobs=2"
SUITE_J1 = "suite-wide, --envmatrix-jobs=1"


def ways(paths: Paths) -> list[Way]:
    with_numpy = ensure_parent_with_numpy(paths)
    without_numpy = [bench.ensure_parent_venv()[0]]
    suite = write_suite_project(paths)
    axis = f"--envmatrix-axis=numpy={','.join(NUMPY_VERSIONS)}"
    return [
        envmatrix_way(MARKERS_J2, with_numpy, PROJECT, paths, "--envmatrix-jobs=2", floor=bench.FLOOR_PAR),
        *floor_ways(ensure_floor(paths)),
        envmatrix_way(MARKERS_J1, with_numpy, PROJECT, paths, "--envmatrix-jobs=1", floor=bench.FLOOR_SEQ),
        envmatrix_way(SUITE_J2, without_numpy, suite, paths, "--envmatrix-jobs=2", axis, floor=bench.FLOOR_PAR),
        envmatrix_way(SUITE_J1, without_numpy, suite, paths, "--envmatrix-jobs=1", axis, floor=bench.FLOOR_SEQ),
    ]


@dataclass
class Measured:
    """What one bytecode mode gave: samples per way, and the parent's own CPU seconds per pytest-envmatrix run."""

    samples: dict[str, list[measure.Sample]]
    parent_cpu: dict[str, list[float]]


def measure_mode(all_ways: list[Way], env: dict, rounds: int, label: str) -> Measured:
    parent_cpu: dict[str, list[float]] = {way.name: [] for way in all_ways if way.parent_cpu}

    def action(way: Way) -> Callable[[], None]:
        def run_once() -> None:
            way.run(env)
            if way.parent_cpu:
                parent_cpu[way.name].append(way.parent_cpu())

        return run_once

    samples = measure.alternate({way.name: action(way) for way in all_ways}, rounds, warmup=True, label=label)
    for name in parent_cpu:
        parent_cpu[name] = parent_cpu[name][1:]  # the warm-up run's
    return Measured(samples, parent_cpu)


def run_section(work: Path, rounds: int, output: Path, profile: bool, count: bool, timed: bool = False) -> None:
    bench.use_work_folder(work)
    paths = Paths(work)
    paths.root.mkdir(parents=True, exist_ok=True)
    started = time.time()
    all_ways = ways(paths)
    bench.clean_bytecode(PROJECT)
    bench.clean_bytecode(paths.suite_project)
    for parent in (bench.venv_python(paths.parent_numpy), bench.venv_python(bench.WORK / "parent")):
        compile_bytecode(parent, bench.REPO / "pytest_envmatrix")
    try:
        for way in all_ways:  # builds the environments (unmeasured); the floor venvs exist already
            if way.parent_cpu:
                way.run(bench.bench_env(True))
        results = {}
        for setting, dont_write in (("1", True), ("unset", False)):
            results[setting] = measure_mode(all_ways, bench.bench_env(dont_write), rounds, f"numpy-top, PYTHONDONTWRITEBYTECODE={setting} | ")
        profiled = profile_markers(paths, all_ways) if profile else None
        counted = count_instructions(paths) if count else None
        moments = timeline_markers(paths, rounds) if timed else None
    finally:
        bench.clean_bytecode(PROJECT)
    flags = [flag for flag, on in (("--profile", profile), ("--instructions", count), ("--timeline", timed)) if on]
    section = numpy_top_report.render(
        results, [way.name for way in all_ways], {way.name: way.floor for way in all_ways}, (MARKERS_J2, MARKERS_J1),
        rounds=rounds, started=started, commit=bench.git_commit(), command=" ".join([COMMAND, *flags]),
        profile=profiled, instructions=counted, timeline=moments,
    )
    numpy_top_report.write_section(output, section)
    print(f"bench: wrote the numpy-top section of {output}", file=sys.stderr)


def profile_markers(paths: Paths, all_ways: list[Way]) -> dict | None:
    """pyinstrument on the marker-declared parent, warm, jobs=2, PYTHONDONTWRITEBYTECODE=1 (see bench/run.py)."""
    target = bench.ensure_pyinstrument()
    args = ["--envmatrix", f"--envmatrix-cache-dir={paths.cache}", "--envmatrix-jobs=2", *bench.PYTEST_ARGS]
    parent = bench.PARENT
    bench.PARENT = [str(bench.venv_python(paths.parent_numpy)), "-m", "pytest"]
    try:
        return bench.profile_parent("numpy at the top, markers, warm, --envmatrix-jobs=2, PYTHONDONTWRITEBYTECODE=1", args, PROJECT, target)
    finally:
        bench.PARENT = parent


def timeline_markers(paths: Paths, rounds: int) -> list[str]:
    """The marker-declared parent's moments (see ``timeline.py``), warm, both job counts, PYTHONDONTWRITEBYTECODE=1."""
    env = bench.bench_env(True)
    python = bench.venv_python(paths.parent_numpy)

    def parent(jobs: int) -> Callable[[Path], dict]:
        args = ["--envmatrix", f"--envmatrix-cache-dir={paths.cache}", *bench.PYTEST_ARGS, f"--envmatrix-jobs={jobs}"]
        return lambda out: timeline.run_once(python, args, env, PROJECT, out)

    floor = [
        lambda python=python: bench.sh([python, "-m", "pytest", *bench.PYTEST_ARGS, "tests"], env, PROJECT, "numpy-top-timeline-floor")
        for python in (bench.venv_python(paths.floor / version) for version in NUMPY_VERSIONS)
    ]
    result = timeline.measure({"jobs=1": parent(1), "jobs=2": parent(2)}, floor, rounds, paths.root / "timeline.json")
    return timeline.render(result, "warm, PYTHONDONTWRITEBYTECODE=1")


def count_instructions(paths: Paths) -> list[tuple[str, str, int]]:
    """Instructions (callgrind) of the pieces of a warm parent's work, and of one floor environment, for comparison.

    PYTHONDONTWRITEBYTECODE unset, the bytecode written by the runs measured before.
    """
    env = bench.bench_env(False)
    parent = bench.venv_python(paths.parent_numpy)
    without_numpy = bench.venv_python(bench.WORK / "parent")
    cache = f"--envmatrix-cache-dir={paths.cache}"
    axis = f"--envmatrix-axis=numpy={','.join(NUMPY_VERSIONS)}"
    steps = [
        ("python", "python, started and ended", [parent, "-c", "pass"], PROJECT),
        ("pytest", "python + import pytest", [parent, "-c", "import pytest"], PROJECT),
        ("packaging", "python + import pytest + import packaging.requirements", [parent, "-c", "import pytest, packaging.requirements"], PROJECT),
        ("plugin", "python + import pytest + import pytest_envmatrix.plugin", [parent, "-c", "import pytest, pytest_envmatrix.plugin"], PROJECT),
        ("numpy", "python + import numpy, benchtop", [parent, "-c", "import numpy, sys; sys.path.insert(0, 'src'); import benchtop"], PROJECT),
        ("collect", "markers: the parent pytest --envmatrix --collect-only", [parent, "-m", "pytest", "--envmatrix", cache, *bench.PYTEST_ARGS, "--collect-only"], PROJECT),
        ("parent", "markers: the parent pytest --envmatrix, --envmatrix-jobs=2", [parent, "-m", "pytest", "--envmatrix", cache, "--envmatrix-jobs=2", *bench.PYTEST_ARGS], PROJECT),
        ("suite", "suite-wide: the parent pytest --envmatrix, --envmatrix-jobs=2", [without_numpy, "-m", "pytest", "--envmatrix", cache, "--envmatrix-jobs=2", axis, *bench.PYTEST_ARGS], paths.suite_project),
        ("floor", f"floor: python -m pytest in the numpy {PARENT_NUMPY} venv", [bench.venv_python(paths.floor / PARENT_NUMPY), "-m", "pytest", *bench.PYTEST_ARGS, "tests"], PROJECT),
    ]
    for key, _label, cmd, cwd in steps:
        if key in ("parent", "suite"):  # a command line's first run writes the plan and module records its warm runs use
            bench.sh(cmd, env, cwd, f"instructions-warm-up-{key}")
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(lambda step: instructions.count(step[2], env, step[3]), steps))
    return [(key, label, n) for (key, label, _cmd, _cwd), n in zip(steps, counts)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per bytecode mode (default 7)")
    parser.add_argument("--output", type=Path, default=bench.DOC)
    parser.add_argument("--work-dir", type=Path, default=bench.BENCH / ".work", metavar="DIR")
    parser.add_argument("--profile", action="store_true", help="add a pyinstrument profile of the marker-declared parent")
    parser.add_argument("--instructions", action="store_true", help="add instruction counts (valgrind's callgrind) of the parent's pieces")
    parser.add_argument("--timeline", action="store_true", help="add the marker-declared parent's timeline: when its first child starts, what each child costs")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run_section(args.work_dir.resolve(), args.rounds, args.output, args.profile, args.instructions, args.timeline)
    except (bench.BenchError, subprocess.CalledProcessError) as exc:
        print(f"bench: a measured command failed:\n{exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.pop("PYTHONPATH", None)
    sys.exit(main())
