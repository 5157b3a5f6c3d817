#!/usr/bin/env python
"""``pytest -n 2`` against no ``-n``, in one command: ``python bench/xdist.py``.

A suite shaped like a real one: several test modules that import numpy at
their top, a few hundred tests, run against real numpy releases from the
package index, warm (the environments cached, one unmeasured run of each way
first). Measured twice: with the matrix declared by markers (each module's
``pytestmark``; the parent collects, so it has numpy too; every test is in the
matrix, so from its second run on ``-n 2`` starts no worker) and as a suite-wide
matrix (``envmatrix_axes``; each environment's child collects). Each run
also counts the children it started (a conftest records every pytest
process that runs inside a cached environment) and the ways' results are
compared test id by test id. The ways alternate run by run, and the report
gives medians and the ratio of medians measured side by side.

It writes its section into ``docs/performance.md`` between the markers
``<!-- xdist -->`` and ``<!-- /xdist -->``, which ``bench/run.py`` carries
over when it rewrites the file. Run it with a Python that has uv (the
developers' venv); everything it installs goes to ``bench/.work/xdist``.

``--runs N`` sets the measured runs per way (default 7); ``--output`` another file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pytest_envmatrix import installer  # noqa: E402
import sections  # noqa: E402  (bench/sections.py: each benchmark's part of docs/performance.md)

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / ".work" / "xdist"
START, END = "<!-- xdist -->", "<!-- /xdist -->"
COMMAND = "python bench/xdist.py"
NUMPY_VERSIONS = ("1.26.4", "2.0.2", "2.1.3")
PARENT_NUMPY = "2.1.3"  # with markers the parent imports the test modules, so it needs a numpy of its own
MODULES, TESTS_PER_MODULE = 5, 40
WAYS = ("no -n", "-n 2")
MODES = ("markers", "suite-wide")
BASE_PYTHON = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)

RECORDER = '''
import os
import sys


def pytest_configure(config):
    record = os.environ.get("BENCH_PROCESSES")
    if record:
        with open(record, "a") as f:
            f.write(f"{os.getpid()} {sys.prefix}\\n")
'''


def test_module(index: int, marked: bool) -> str:
    """One module of the suite: numpy imported at the top, a mix of plain and parametrized tests."""
    head = "import numpy as np\nimport pytest\n\n"
    if marked:
        head += f"pytestmark = pytest.mark.envmatrix(numpy={list(NUMPY_VERSIONS)!r})\n\n"
    body = ""
    plain = TESTS_PER_MODULE // 2
    for n in range(plain):
        body += f"\ndef test_sum_{n}():\n    a = np.arange({n + 10})\n    assert a.sum() == {sum(range(n + 10))}\n\n"
    body += (
        f"\n@pytest.mark.parametrize('size', range({TESTS_PER_MODULE - plain}))\n"
        f"def test_solve_{index}(size):\n"
        "    rng = np.random.default_rng(size)\n"
        "    a = rng.standard_normal((size + 2, size + 2)) + np.eye(size + 2) * (size + 2)\n"
        "    b = rng.standard_normal(size + 2)\n"
        "    assert np.allclose(a @ np.linalg.solve(a, b), b)\n"
    )
    return head + body


def write_project(root: Path, marked: bool) -> Path:
    if root.exists():
        shutil.rmtree(root)
    (root / "tests").mkdir(parents=True)
    ini = "[pytest]\ntestpaths = tests\n"
    if not marked:
        ini += "envmatrix_axes =\n    numpy=" + ",".join(NUMPY_VERSIONS) + "\n"
    (root / "pytest.ini").write_text(ini)
    (root / "conftest.py").write_text(RECORDER)
    for index in range(MODULES):
        (root / "tests" / f"test_part{index}.py").write_text(test_module(index, marked))
    return root


def find_uv() -> str:
    """The uv the plugin itself uses (its ``uv`` extra, else PATH), so every uv figure comes from one uv."""
    found = installer.find_uv()
    if not found:
        raise SystemExit("bench/xdist.py needs uv: pip install 'pytest-envmatrix[uv]'")
    return found


def run_environment() -> dict[str, str]:
    """The machine's environment without installer and pytest settings, so the runs install as the report says."""
    dropped = ("PYTEST_", "PIP_", "VIRTUALENV_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped) and (not k.startswith("UV_") or k == "UV_CACHE_DIR")}
    env.update(PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1")
    return env


def ensure_parent(uv: str) -> Path:
    """The parent's venv: this checkout (editable) with uv, the running pytest and xdist, and numpy."""
    venv = WORK / "parent"
    requirements = [
        "-e", f"{REPO}[uv]", f"pytest=={metadata.version('pytest')}", f"pytest-xdist=={_version('pytest-xdist', '3.8.0')}",
        f"numpy=={PARENT_NUMPY}",
    ]
    stamp = venv / "bench-requirements.json"
    if not (stamp.exists() and json.loads(stamp.read_text()) == requirements):
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([uv, "venv", "--python", BASE_PYTHON, str(venv)], check=True, env=run_environment())
        python = venv / "bin" / "python"
        subprocess.run([uv, "pip", "install", "--compile-bytecode", "--python", str(python), *requirements], check=True, env=run_environment())
        stamp.write_text(json.dumps(requirements))
    return venv / "bin" / "python"


def _version(name: str, default: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return default


def run_once(python: Path, project: Path, way: str) -> dict:
    record, report = WORK / "processes.txt", WORK / "report.xml"
    record.unlink(missing_ok=True)
    command = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--envmatrix", f"--envmatrix-cache-dir={WORK / 'cache'}",
               f"--junitxml={report}"]
    if way == "-n 2":
        command += ["-n", "2"]
    env = {**run_environment(), "BENCH_PROCESSES": str(record)}
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"the {way} run in {project.name} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    processes = [line.split(" ", 1) for line in record.read_text().splitlines()] if record.exists() else []
    children = sum(1 for _, prefix in processes if prefix.startswith(str(WORK / "cache")))
    if children != len(NUMPY_VERSIONS):  # kept for a look: which environment got more than one child, and why
        (WORK / "logs").mkdir(exist_ok=True)
        (WORK / "logs" / f"{project.name}-{way.replace(' ', '')}-{int(time.time())}.txt").write_text(proc.stdout + proc.stderr)
    return {"wall": wall, "cpu": cpu, "children": children, "load": load, "results": outcomes(report)}


def outcomes(report: Path) -> dict[str, str]:
    found = {}
    for case in ET.parse(report).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        found[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return found


def render(figures: dict, runs: int) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    loads = [r["load"] for mode in MODES for way in WAYS for r in figures[mode][way]]
    items = len(figures[MODES[0]][WAYS[0]][0]["results"])
    lines = [
        START,
        "## xdist: `-n 2` against no `-n`",
        "",
        f"Produced by `{COMMAND}` on {now}, pytest-envmatrix commit {commit}, {os.cpu_count()} CPUs, "
        f"pytest {metadata.version('pytest')}, pytest-xdist {_version('pytest-xdist', '?')}.",
        "",
        f"{MODULES} test modules that import numpy at their top, {MODULES * TESTS_PER_MODULE} tests (plain ones and a "
        f"parametrized `np.linalg.solve`), against numpy {', '.join(NUMPY_VERSIONS)}: {items} items, three environments, "
        "warm (cached, with one unmeasured run of each way first). `markers`: each module's `pytestmark` declares the "
        f"matrix, and the parent (numpy {PARENT_NUMPY}) collects. `suite-wide`: the modules have no marker, "
        "`envmatrix_axes` declares the matrix, and each environment's child collects. Default `--envmatrix-jobs` "
        f"(the CPUs). Medians of {runs} runs per way, the ways alternating run by run; the ratio is of the medians "
        "measured side by side in this one run. Children: pytest processes started inside an environment, per run. "
        "Every run's results were compared between the ways, test id by test id, and were the same. "
        f"The machine was busy with other work: its 1-minute load average at the start of the runs was "
        f"{min(loads):.1f} to {max(loads):.1f}, so single runs vary; compare the ratios.",
        "",
        "| matrix | no `-n`: s | `-n 2`: s | `-n 2` / no `-n`: ratio of medians | median of the rounds' ratios "
        "| CPU, no `-n`: s | CPU, `-n 2`: s | children, no `-n` | children, `-n 2` |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode in MODES:
        runs_of = figures[mode]
        plain, spread = (statistics.median(r["wall"] for r in runs_of[way]) for way in WAYS)
        paired = statistics.median(b["wall"] / a["wall"] for a, b in zip(runs_of[WAYS[0]], runs_of[WAYS[1]]))
        cpu = [statistics.median(r["cpu"] for r in runs_of[way]) for way in WAYS]
        counts = [sorted({r["children"] for r in runs_of[way]}) for way in WAYS]
        lines.append(
            f"| {mode} | {plain:.2f} | {spread:.2f} | {spread / plain:.2f}× | {paired:.2f}× | {cpu[0]:.2f} | {cpu[1]:.2f} | "
            f"{'/'.join(map(str, counts[0]))} | {'/'.join(map(str, counts[1]))} |"
        )
    lines += [
        "",
        "With a suite-wide matrix, `-n 2` starts no xdist worker and runs the same way as no `-n` (two environments' "
        "children at once either way): the two differ only by the machine's noise. With markers, every item of this "
        "suite is in the matrix: the unmeasured first run of `-n 2` started xdist's controller and two workers (each "
        "of which collects the suite, importing numpy and every test module, and sends every report on to the "
        "controller) and recorded that its items were all matrix items; so the measured runs start no worker, "
        "collect in one process and start the children from the plan while they collect, as without `-n`, two "
        "environments at once. The first measured run of `-n 2` has no plan of children yet (the workers' run "
        "left none), so its children start after collection.",
        "",
        "CPU is the user and system time of the run and all its processes, the least disturbed figure on a busy "
        "machine. Each run (wall s / CPU s):",
        "",
    ]
    for mode in MODES:
        for way in WAYS:
            lines.append(f"- {mode}, {way}: " + ", ".join(f"{r['wall']:.1f}/{r['cpu']:.1f}" for r in figures[mode][way]))
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(output: Path, section: str) -> None:
    sections.write_section(output, section, START, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "performance.md")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    python = ensure_parent(find_uv())
    projects = {"markers": write_project(WORK / "marked", marked=True), "suite-wide": write_project(WORK / "suite", marked=False)}
    for mode in MODES:  # builds the environments and leaves each way's plan: not counted
        for way in WAYS:
            run_once(python, projects[mode], way)
    figures = {mode: {way: [] for way in WAYS} for mode in MODES}
    for index in range(args.runs):
        for mode in MODES:
            ways = WAYS if index % 2 == 0 else tuple(reversed(WAYS))
            for way in ways:
                figures[mode][way].append(run_once(python, projects[mode], way))
                last = figures[mode][way][-1]
                print(f"run {index} {mode} {way}: {last['wall']:.2f}s, CPU {last['cpu']:.2f}s, {last['children']} children", flush=True)
            first, second = (figures[mode][way][-1]["results"] for way in WAYS)
            if first != second:
                different = sorted(set(first.items()) ^ set(second.items()))[:10]
                raise SystemExit(f"{mode}: -n 2 and no -n gave different results: {different}")
    write_section(args.output, render(figures, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
