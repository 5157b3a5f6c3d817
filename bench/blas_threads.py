#!/usr/bin/env python
"""What the children's share of the CPUs gains, in one command: ``python bench/blas_threads.py``.

Two numpy environments at once, each running OpenBLAS with one thread per
CPU, ask for twice the machine. pytest-envmatrix gives each child a share of
the CPUs through ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and the like
(CPUs // children at once). This runs a test module doing large matrix
products against two real numpy versions with ``--envmatrix-jobs=2``, in two
ways that alternate run by run: with the share (the default), and with the
thread variables set to the number of CPUs (what OpenBLAS does by itself, and
what every child got before the share; a variable the user sets is passed on
unchanged). It writes its table into ``docs/performance.md`` between the
markers ``<!-- blas-threads -->`` and ``<!-- /blas-threads -->``, which
``bench/run.py`` carries over when it rewrites the file.

Run it with a Python that has this checkout installed (the developers' venv).
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the runs' environment
(some machines set them for old OpenBLAS builds; they slow a current one), and
the OpenBLAS kernel each numpy then runs is recorded with threadpoolctl.

``--runs N`` sets the measured runs per way (default 7); ``--output`` another file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sections  # noqa: E402  (bench/sections.py: each benchmark's part of docs/performance.md)

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / ".work" / "blas-threads"
START, END = "<!-- blas-threads -->", "<!-- /blas-threads -->"
COMMAND = "python bench/blas_threads.py"
NUMPY_VERSIONS = ("1.26.4", "2.1.3")
THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
    "BLIS_NUM_THREADS",
)
WAYS = ("share", "one thread per CPU")

TEST_MODULE = f'''
import json
import os

import pytest

pytestmark = pytest.mark.envmatrix(numpy={list(NUMPY_VERSIONS)!r}, deps=["threadpoolctl"])


def test_kernel():
    import numpy as np
    from threadpoolctl import threadpool_info

    with open(f"kernel-{{np.__version__}}.json", "w") as f:
        json.dump(threadpool_info(), f)


@pytest.mark.parametrize("seed", range(3))
def test_products(seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.standard_normal((2000, 2000))
    for _ in range(8):
        a = a @ a
        a /= np.abs(a).max()
    assert np.isfinite(a).all()
'''


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def environment(way: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", *THREAD_VARIABLES)}
    if way == "one thread per CPU":
        env.update({name: str(cpus()) for name in THREAD_VARIABLES})
    return env


def run_once(way: str) -> dict[str, float]:
    report = WORK / "report.xml"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--envmatrix", "--envmatrix-jobs=2",
         f"--envmatrix-cache-dir={WORK / 'cache'}", f"--junitxml={report}"],
        cwd=WORK / "project", env=environment(way), capture_output=True, text=True, timeout=900,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"the {way} run failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    times = [float(case.get("time")) for case in ET.parse(report).iter("testcase") if "test_products" in case.get("name")]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "heaviest": max(times), "tests": sum(times), "cpu": cpu, "load": load}


def kernels() -> list[str]:
    found = []
    for path in sorted((WORK / "project").glob("kernel-*.json")):
        for pool in json.loads(path.read_text()):
            found.append(
                f"numpy {path.stem.split('-', 1)[1]}: {pool.get('internal_api')} {pool.get('version')}, "
                f"kernel {pool.get('architecture')}, {pool.get('num_threads')} thread(s) with the share"
            )
    return found


def render(figures: dict[str, list[dict]], runs: int, found: list[str]) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    loads = [r["load"] for way in WAYS for r in figures[way]]
    lines = [
        START,
        "## BLAS threads: two numpy environments at once",
        "",
        f"Produced by `{COMMAND}` on {now}, pytest-envmatrix commit {commit}, {cpus()} CPUs.",
        "",
        f"A test module of three tests, each doing eight products of 2000×2000 matrices, against numpy "
        f"{' and '.join(NUMPY_VERSIONS)} (one environment each, cached) with `--envmatrix-jobs=2`. "
        "`share`: the plugin's default, each child's thread variables set to CPUs // children at once. "
        "`one thread per CPU`: the thread variables set to the number of CPUs, which is what the children "
        "got before (OpenBLAS's own default). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset; the kernels: "
        + "; ".join(found) + ". "
        f"Medians of {runs} runs per way, the ways alternating run by run. CPU is the user and system time "
        "of the run and all its processes: threads that wait by spinning burn it without doing work. "
        f"The machine is shared: its 1-minute load average at the start of the runs was {min(loads):.1f} to "
        f"{max(loads):.1f}.",
        "",
        "| threads | wall (s) | heaviest test (s) | sum of the 6 product tests (s) | CPU (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for way in WAYS:
        rows = figures[way]
        median = {key: statistics.median(r[key] for r in rows) for key in ("wall", "heaviest", "tests", "cpu")}
        lines.append(
            f"| {way} | {median['wall']:.2f} | {median['heaviest']:.2f} | {median['tests']:.2f} | {median['cpu']:.2f} |"
        )
    lines += ["", "Each run (wall s / heaviest test s):", ""]
    for way in WAYS:
        lines.append(f"- {way}: " + ", ".join(f"{r['wall']:.1f}/{r['heaviest']:.1f}" for r in figures[way]))
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(output: Path, section: str) -> None:
    sections.write_section(output, section, START, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "performance.md")
    args = parser.parse_args(argv)
    project = WORK / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_blas.py").write_text(TEST_MODULE)
    run_once("share")  # builds the environments and records the kernels; not counted
    found = kernels()
    figures: dict[str, list[dict]] = {way: [] for way in WAYS}
    for index in range(args.runs):
        for way in WAYS if index % 2 == 0 else tuple(reversed(WAYS)):
            figures[way].append(run_once(way))
            print(f"run {index} {way}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures[way][-1].items()), flush=True)
    write_section(args.output, render(figures, args.runs, found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
