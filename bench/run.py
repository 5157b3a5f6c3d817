#!/usr/bin/env python
"""The benchmark of pytest-envmatrix, in one command.

``python bench/run.py`` measures pytest-envmatrix side by side with tox, tox
with tox-uv, nox (virtualenv and uv backends) and ``uv run``, and against the
floor (plain pytest in prebuilt environments), on ``bench/project`` against
four numpy versions; then at scale (16 environments, 2,000 tests); then, through
``bench/numpy_top.py``, the shape with numpy imported at the top of the test
modules and of the module under test. It writes ``docs/performance.md``.

``python bench/run.py --smoke`` runs the same machinery at a tiny size, on
made-up local wheels instead of numpy and without the competitors, in well
under two minutes; it writes its report to ``--output`` (default: a temporary
file), never to ``docs/performance.md``.

Everything the benchmark installs or builds (the competitors' tool
environments, every tool's environments, uv's cache, the wheel folder) lives
in ``bench/.work/``, which git ignores, or in the folder ``--work-dir`` names
(the plugin's own test of the smoke run gives it a temporary one). The competitors never go into the
Python that runs this script.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pytest_envmatrix import installer  # noqa: E402
import sections  # noqa: E402  (bench/sections.py: each benchmark's part of docs/performance.md)

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PROJECT = BENCH / "project"
WORK = BENCH / ".work"  # the smoke run uses a folder of its own below it
WHEELS = BENCH / ".work" / "wheels"  # shared by both: fetched once
LOGS = WORK / "logs"
DOC = REPO / "docs" / "performance.md"
COMMAND = "python bench/run.py"

NUMPY_VERSIONS = ("1.26.4", "2.0.2", "2.1.3", "2.2.6")
PYTEST_PIN = f"pytest=={metadata.version('pytest')}"
FLIT_CORE = "flit_core>=3.4,<4"  # bench/project's build backend
# The interpreter environments are made from: the one the plugin itself picks for the parent's Python.
BASE_PYTHON = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
# The parent pytest: a venv of its own holding pytest-envmatrix (editable, from this checkout) and
# what it depends on, as a CI job installs it (set by ensure_parent_venv). MACHINE_PARENT is the
# Python this script runs under, with every pytest plugin installed there, for one row each.
PARENT = [sys.executable, "-m", "pytest"]
MACHINE_PARENT = [sys.executable, "-m", "pytest"]
PYTEST_ARGS = ["-q", "-p", "no:cacheprovider"]  # every tool runs pytest with these


class BenchError(Exception):
    """A measured command failed: its figure would mean nothing, so the run stops."""


# ---------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Sizes:
    """How much to measure; the smoke size keeps the CI check quick."""

    warm_runs: int
    cold_runs: int
    scale_envs: int
    scale_tests: int
    many_tests: int
    few_tests: int
    tests_per_file: int
    warmup: bool  # one unmeasured round before each phase
    retries: int  # extra attempts for a run disturbed by other processes (none for the smoke run: it only checks)


FULL = Sizes(warm_runs=5, cold_runs=3, scale_envs=16, scale_tests=200, many_tests=2000, few_tests=200, tests_per_file=200, warmup=True, retries=1)
SMOKE = Sizes(warm_runs=1, cold_runs=1, scale_envs=2, scale_tests=20, many_tests=200, few_tests=20, tests_per_file=20, warmup=False, retries=0)


# ---------------------------------------------------------------------------- running commands


def sh(cmd: Sequence, env: dict, cwd: Path, log_name: str) -> None:
    """Run one command with its output in a log file; a failure stops the benchmark with the log's end."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{log_name}.log"
    with open(log, "wb") as out:
        proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise BenchError(f"{' '.join(map(str, cmd))}\nexited {proc.returncode} in {cwd}; end of {log}:\n{tail}")


def output_of(cmd: Sequence, env: dict | None = None) -> str:
    """A short command's standard output, for version strings."""
    return subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, check=True).stdout.strip()


def timed(action: Callable[[], None]) -> float:
    """Wall-clock seconds of one action (perf_counter around the subprocess calls it makes)."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def two_at_a_time(actions: Sequence[Callable[[], None]], jobs: int = 2) -> None:
    """Run the actions at most ``jobs`` at once; the first failure is raised."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(action) for action in actions]:
            future.result()


def in_turn(actions: Sequence[Callable[[], None]]) -> None:
    for action in actions:
        action()


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def venv_tool(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


def find_uv() -> str:
    """The uv the plugin itself uses (its ``uv`` extra, else PATH), so every uv figure comes from one uv."""
    found = installer.find_uv()
    if not found:
        raise SystemExit("bench/run.py needs uv: pip install 'pytest-envmatrix[uv]'")
    return found


UV = find_uv()


def bench_env(dont_write_bytecode: bool = True) -> dict[str, str]:
    """The environment of every measured command: the machine's, with installer settings made explicit.

    The machine's own pip/uv/virtualenv/pytest settings are removed, so each
    tool gets the package sources the report states: uv-based tools the
    package index through one warm uv cache in the work directory, pip-based
    tools the local wheel folder (``PIP_FIND_LINKS`` + ``PIP_NO_INDEX``).
    """
    dropped = ("PYTEST_", "PIP_", "UV_", "VIRTUALENV_", "TOX_", "NOX_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    if dont_write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(
        UV_CACHE_DIR=str(WORK / "uv-cache"),
        UV_NO_CONFIG="1",
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_CACHE_DIR=str(WORK / "pip-cache"),
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(WHEELS),
        VIRTUALENV_OVERRIDE_APP_DATA=str(WORK / "virtualenv-app-data"),
        BENCH_PYTEST=PYTEST_PIN,
        # pytest keeps the last three numbered folders under $TMPDIR/pytest-of-USER and deletes older
        # ones when a run that asked for a temporary folder ends. The parent pytest --envmatrix asks
        # for one (its children's); plain pytest on the benchmark's tests does not. In a shared /tmp
        # where other test suites run, what it deleted would be theirs (thousands of files at times);
        # here only the folders of its own earlier runs, as on a user's machine.
        TMPDIR=str(WORK / "tmp"),
    )
    (WORK / "tmp").mkdir(parents=True, exist_ok=True)
    return env


# ---------------------------------------------------------------------------- preparation


def ensure_wheels(requirement_sets: Sequence[Sequence[str]]) -> Path:
    """The local wheel folder for pip-based tools and for offline environments, downloaded once.

    One ``pip download`` per set: the numpy pins conflict with each other.
    A stamp records the sets already fetched, so later runs need no network.
    """
    dest = WHEELS
    dest.mkdir(parents=True, exist_ok=True)
    stamp = dest / "fetched.json"
    done = set(json.loads(stamp.read_text())) if stamp.exists() else set()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    for requirements in requirement_sets:
        key = " ".join(requirements)
        if key in done:
            continue
        print(f"bench: pip download {key}", file=sys.stderr)
        sh([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", dest, *requirements], env, dest, "pip-download")
        done.add(key)
        stamp.write_text(json.dumps(sorted(done)))
    return dest


def ensure_tool_venv(name: str, requirements: Sequence[str]) -> Path:
    """A venv for competitors, under the work directory; rebuilt only when its requirements change.

    Installed byte-compiled, so a tool's own start-up does not depend on the
    PYTHONDONTWRITEBYTECODE setting being measured.
    """
    venv = WORK / name
    stamp = venv / "bench-requirements.json"
    if stamp.exists() and json.loads(stamp.read_text()) == list(requirements):
        return venv
    print(f"bench: creating the tool environment {venv} ({', '.join(requirements)})", file=sys.stderr)
    rmtree(venv)
    env = bench_env()
    sh([UV, "venv", "--python", BASE_PYTHON, venv], env, WORK, f"tool-{name}")
    sh([UV, "pip", "install", "--compile-bytecode", "--python", venv_python(venv), *requirements], env, WORK, f"tool-{name}")
    stamp.write_text(json.dumps(list(requirements)))
    return venv


def ensure_parent_venv() -> list[str]:
    """The parent's venv: pytest-envmatrix[uv] from this checkout (editable) and the benchmark's pytest.

    Byte-compiled like a pip install would leave it, and rebuilt when the
    plugin's dependencies change.
    """
    venv = WORK / "parent"
    requirements = ["-e", f"{REPO}[uv]", PYTEST_PIN]
    wanted = [*requirements, hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()]
    stamp = venv / "bench-requirements.json"
    if not (stamp.exists() and json.loads(stamp.read_text()) == wanted):
        print(f"bench: creating the parent's environment {venv}", file=sys.stderr)
        rmtree(venv)
        env = bench_env()
        sh([UV, "venv", "--python", BASE_PYTHON, venv], env, WORK, "tool-parent")
        sh([UV, "pip", "install", "--compile-bytecode", "--python", venv_python(venv), *requirements], env, WORK, "tool-parent")
        stamp.write_text(json.dumps(wanted))
    return [str(venv_python(venv)), "-m", "pytest"]


def ensure_pyinstrument() -> Path:
    """pyinstrument in a folder of its own, appended to the parent's sys.path only for the profiled run."""
    target = WORK / "pyinstrument"
    if not (target / "pyinstrument").is_dir():
        sh([UV, "pip", "install", "--target", target, "--python", sys.executable, "pyinstrument"], bench_env(), WORK, "tool-pyinstrument")
    return target


def uv_version() -> str:
    return output_of([UV, "--version"]).split()[1]


def build_wheel(dest: Path, dist: str, version: str, files: dict[str, str]) -> Path:
    """A minimal pure-Python wheel, written directly: the scale environments need no build backend."""
    info = f"{dist}-{version}.dist-info"
    contents = dict(files)
    contents[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
    contents[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: envmatrix-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    contents[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = dest / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in contents.items():
            zf.writestr(path, text)
    return wheel


def tiny_versions(count: int) -> tuple[str, ...]:
    return tuple(f"{n}.0" for n in range(1, count + 1))


def build_tiny_wheels(dest: Path, count: int) -> Path:
    """benchdemo 1.0 ... N.0: a made-up package, so environments at scale build from local files only."""
    for version in tiny_versions(count):
        build_wheel(dest, "benchdemo", version, {"benchdemo/__init__.py": f"VERSION = {version!r}\n"})
    return dest


def write_trivial_project(root: Path, versions: Sequence[str], tests: int, per_file: int) -> Path:
    """A project of ``tests`` trivial tests, all marked with one benchdemo axis, in files of ``per_file``.

    It has no ``[project]`` table, so pytest-envmatrix installs only the
    pins; the marker is registered for the runs without the plugin.
    """
    rmtree(root)
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\nmarkers = ["envmatrix: pytest-envmatrix marker"]\n'
    )
    marker = f"pytestmark = pytest.mark.envmatrix(benchdemo={list(versions)!r})\n"
    for start in range(0, tests, per_file):
        body = "".join(f"\n\ndef test_{n:05d}():\n    assert {n} + 1 > {n}\n" for n in range(start, min(tests, start + per_file)))
        (root / "tests" / f"test_items_{start // per_file:03d}.py").write_text(f"import pytest\n\n{marker}{body}")
    return root


def clean_bytecode(root: Path) -> None:
    """Remove __pycache__ folders, so a phase starts without bytecode an earlier phase wrote."""
    for folder in sorted(root.rglob("__pycache__"), reverse=True):
        rmtree(folder)


# ---------------------------------------------------------------------------- what is measured


@dataclass(frozen=True)
class Subject:
    """A project and the environments every tool makes for it: one per version of one axis."""

    project: Path
    axis: str
    versions: tuple[str, ...]
    editable: Path | None = None  # installed editable into each environment
    find_links: tuple[Path, ...] = ()  # when set: these folders only, no index

    def requirements(self, version: str) -> list[str]:
        editable = ["-e", str(self.editable)] if self.editable else []
        return [*editable, f"{self.axis}=={version}", PYTEST_PIN]

    def uv_index_args(self) -> list[str]:
        if not self.find_links:
            return []
        return ["--no-index", *[arg for link in self.find_links for arg in ("--find-links", str(link))]]

    def envmatrix_index_args(self) -> list[str]:
        if not self.find_links:
            return []
        return [*[f"--envmatrix-find-links={link}" for link in self.find_links], "--envmatrix-no-index"]


@dataclass
class Tool:
    """One row: how to run it cold and warm, how to make it cold again, and which floor it is held to."""

    name: str
    source: str  # where its packages come from, for the table
    parallel: bool  # compared with the two-at-a-time floor, else with the sequential one
    cold: Callable[[dict], None] | None
    warm: Callable[[dict], None] | None
    reset: Callable[[], None] = lambda: None


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def pytest_in(python: Path, subject: Subject, env: dict, log: str, paths: Sequence[str] = ("tests",)) -> None:
    sh([python, "-m", "pytest", *PYTEST_ARGS, *paths], env, subject.project, log)


def envmatrix_tool(name: str, subject: Subject, cache: Path, *extra: str, parallel: bool = True, source: str, machine_parent: bool = False) -> Tool:
    """``machine_parent``: the parent runs in the Python running this script, with the other pytest
    plugins installed there, to show what they add to the plugin's own cost."""
    parent = MACHINE_PARENT if machine_parent else PARENT
    cmd = [*parent, "--envmatrix", f"--envmatrix-cache-dir={cache}", *PYTEST_ARGS, *subject.envmatrix_index_args(), *extra]
    run = lambda env: sh(cmd, env, subject.project, slug(name))  # noqa: E731
    return Tool(name, source, parallel, cold=run, warm=run, reset=lambda: rmtree(cache))


def tox_tool(name: str, venv: Path, workdir: Path, parallel: bool, source: str) -> Tool:
    cmd = [venv_tool(venv, "tox"), "p" if parallel else "run", "-c", BENCH / "tox.ini", "--workdir", workdir]
    run = lambda env: sh(cmd, env, BENCH, slug(name))  # noqa: E731
    return Tool(name, source, parallel, cold=run, warm=run, reset=lambda: rmtree(workdir))


def nox_tool(name: str, venv: Path, backend: str, envdir: Path, source: str) -> Tool:
    """nox runs its sessions one after another; warm runs reuse the environments and skip installs (-R)."""
    cmd = [venv_tool(venv, "nox"), "-f", BENCH / "noxfile.py", "--envdir", envdir, "-s", f"tests_{backend}"]
    return Tool(
        name,
        source,
        parallel=False,
        cold=lambda env: sh(cmd, env, BENCH, slug(name)),
        warm=lambda env: sh([*cmd, "-R"], env, BENCH, slug(name)),
        reset=lambda: rmtree(envdir),
    )


def uv_run_tool(subject: Subject) -> Tool:
    """Four ``uv run --with`` commands, one after another, offline from uv's cache.

    ``--isolated`` keeps the running Python's own site-packages (and its
    pytest plugins) out; uv keeps the ``--with`` environments in its cache, so
    "cold" removes exactly those.
    """

    def run_all(env: dict) -> None:
        for version in subject.versions:
            cmd = [UV, "run", "--isolated", "--offline", "--no-project", "--python", BASE_PYTHON]
            cmd += ["--with", f"{subject.axis}=={version}", "--with", PYTEST_PIN, "--with-editable", subject.editable]
            sh([*cmd, "pytest", *PYTEST_ARGS, "tests"], env, subject.project, f"uv-run-{version}")

    return Tool("uv run --with (4 commands in turn)", "uv cache, --offline", False, cold=run_all, warm=run_all, reset=remove_uv_run_envs)


def remove_uv_run_envs() -> None:
    """Delete the environments ``uv run --with`` cached, and nothing else of uv's cache."""
    envs = WORK / "uv-cache" / "environments-v2"
    if not envs.is_dir():
        return
    for link in envs.rglob("*"):
        if link.is_symlink():
            rmtree(link.resolve())
    rmtree(envs)


def floor_tools(subject: Subject, root: Path, pythons: Callable[[], list[Path]] | None = None) -> list[Tool]:
    """Plain pytest in one environment per version: in turn, and two at a time.

    Cold: per environment ``uv venv`` + ``uv pip install`` + the first pytest
    run (into ``root``, removed first). Warm: pytest in the environments the
    cold runs left (or in ``pythons()``, when given).
    """

    def chain(version: str, env: dict) -> Callable[[], None]:
        def make_and_test() -> None:
            venv = root / version
            log = f"floor-cold-{version}"
            sh([UV, "venv", "--python", BASE_PYTHON, venv], env, WORK, log)
            sh([UV, "pip", "install", "--python", venv_python(venv), *subject.uv_index_args(), *subject.requirements(version)], env, WORK, log)
            pytest_in(venv_python(venv), subject, env, log)

        return make_and_test

    def warm_actions(env: dict) -> list[Callable[[], None]]:
        found = pythons() if pythons else [venv_python(root / v) for v in subject.versions]
        return [lambda p=p, i=i: pytest_in(p, subject, env, f"floor-warm-{i}") for i, p in enumerate(found)]

    def cold(runner):
        return lambda env: runner([chain(v, env) for v in subject.versions])

    source = "uv (same source as pytest-envmatrix)"
    return [
        Tool("floor, in turn", source, False, cold=cold(in_turn) if not pythons else None,
             warm=lambda env: in_turn(warm_actions(env)), reset=lambda: rmtree(root)),
        Tool("floor, two at a time", source, True, cold=cold(two_at_a_time) if not pythons else None,
             warm=lambda env: two_at_a_time(warm_actions(env)), reset=lambda: rmtree(root)),
    ]


# ---------------------------------------------------------------------------- measuring


@dataclass
class Results:
    """Samples (seconds) per table, row and column, plus what the report needs besides."""

    samples: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    rows: dict[str, list[Tool]] = field(default_factory=dict)
    foreign: list[float] = field(default_factory=list)  # CPUs other processes used, per counted run
    repeated: int = 0  # runs measured again because other processes were busy
    profiles: list[dict] = field(default_factory=list)
    main_envs: int = 4
    started: float = field(default_factory=time.time)

    def add(self, table: str, row: str, column: str, seconds: float) -> None:
        self.samples.setdefault((table, row, column), []).append(seconds)

    def median(self, table: str, row: str, column: str) -> float | None:
        values = self.samples.get((table, row, column))
        return statistics.median(values) if values else None

    def count(self, table: str, row: str, column: str) -> int:
        return len(self.samples.get((table, row, column), []))


def cpu_busy_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (all processes, the kernel included)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this script and of every process it started and waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_alone(action: Callable[[], None]) -> tuple[float, float]:
    """Seconds of one run, and the CPUs other processes kept busy meanwhile (0 = the machine was ours)."""
    busy, own = cpu_busy_seconds(), own_cpu_seconds()
    seconds = timed(action)
    foreign = (cpu_busy_seconds() - busy) - (own_cpu_seconds() - own)
    return seconds, max(0.0, foreign) / seconds


FOREIGN_LIMIT = 0.5  # CPUs busy with other work during a run, above which the run is repeated


def measure(results: Results, table: str, column: str, tools: Sequence[Tool], runs: int, env: dict, cold: bool, warmup: bool, retries: int) -> None:
    """Run every tool ``runs`` times, round-robin, so drift on the machine touches all of them alike.

    Cold: each run starts by removing that tool's environments. A warm-up
    round, unmeasured, comes first when asked (it fills uv's cache, or writes
    the bytecode a phase without PYTHONDONTWRITEBYTECODE keeps). A run during
    which other processes kept more than FOREIGN_LIMIT CPUs busy is repeated
    (at most ``retries`` times; the last one counts, and the report says so).
    """
    active = [t for t in tools if (t.cold if cold else t.warm)]
    rounds = [("warm-up", False)] * warmup + [(f"{n + 1}/{runs}", True) for n in range(runs)]
    for label, counted in rounds:
        for tool in active:
            for attempt in range(retries + 1):
                if cold:
                    tool.reset()
                seconds, foreign = timed_alone(lambda: (tool.cold if cold else tool.warm)(env))
                print(f"bench: {table} | {column} | {label} | {tool.name}: {seconds:.2f} s (other processes: {foreign:.2f} CPUs)", file=sys.stderr, flush=True)
                if not counted or foreign <= FOREIGN_LIMIT:
                    break
                if attempt < retries:
                    results.repeated += 1
            if counted:
                results.add(table, tool.name, column, seconds)
                results.foreign.append(foreign)


COLD = "cold"
WARM_SET = "warm, PYTHONDONTWRITEBYTECODE=1"
WARM_UNSET = "warm, PYTHONDONTWRITEBYTECODE unset"


def measure_phases(results: Results, table: str, tools: Sequence[Tool], sizes: Sizes, with_cold: bool, between: Callable[[], None] = lambda: None) -> None:
    """Cold (if asked), then warm with bytecode writing off, then on: that order, because bytecode
    written while it is on would be read by every later run."""
    if with_cold:
        measure(results, table, COLD, tools, sizes.cold_runs, bench_env(True), cold=True, warmup=sizes.warmup, retries=sizes.retries)
    measure(results, table, WARM_SET, tools, sizes.warm_runs, bench_env(True), cold=False, warmup=sizes.warmup, retries=sizes.retries)
    between()
    # without a warm-up round here, the first run writes the bytecode the others read: the median shows it
    measure(results, table, WARM_UNSET, tools, sizes.warm_runs, bench_env(False), cold=False, warmup=sizes.warmup, retries=sizes.retries)


# ---------------------------------------------------------------------------- the sections


MAIN = "main"
SCALE = "scale"
ITEMS = "items"


def main_section(results: Results, sizes: Sizes, subject: Subject, competitors: bool, profile_target: Path | None) -> None:
    """The four-environment comparison: every tool cold and warm, with the floors."""
    cache = WORK / "envmatrix-cache"
    uv_source = "index via warm uv cache" if not subject.find_links else "local wheels (uv, --no-index)"
    tools = [
        envmatrix_tool("pytest-envmatrix (default jobs)", subject, cache, source=uv_source),
        envmatrix_tool("pytest-envmatrix --envmatrix-jobs=1", subject, cache, "--envmatrix-jobs=1", parallel=False, source=uv_source),
    ]
    if competitors:
        wheels = WHEELS
        pip_source = "local wheel folder (pip)"
        tools.append(envmatrix_tool(
            MACHINE_ROW, subject, cache, source=uv_source, machine_parent=True))
        tools.append(envmatrix_tool(
            "pytest-envmatrix --envmatrix-installer=pip", subject, WORK / "envmatrix-pip-cache",
            "--envmatrix-installer=pip", f"--envmatrix-find-links={wheels}", "--envmatrix-no-index", source=pip_source))
        tox_venv, tox_uv_venv = WORK / "tools", WORK / "tools-uv"
        tools += [
            tox_tool("tox (virtualenv + pip)", tox_venv, WORK / "tox-pip", False, pip_source),
            tox_tool("tox p (virtualenv + pip)", tox_venv, WORK / "tox-pip", True, pip_source),
            tox_tool("tox + tox-uv", tox_uv_venv, WORK / "tox-uv", False, uv_source),
            tox_tool("tox p + tox-uv", tox_uv_venv, WORK / "tox-uv", True, uv_source),
            nox_tool("nox (virtualenv backend)", tox_venv, "virtualenv", WORK / "nox-virtualenv", pip_source),
            nox_tool("nox (uv backend)", tox_venv, "uv", WORK / "nox-uv", uv_source),
            uv_run_tool(subject),
        ]
    tools += floor_tools(subject, WORK / "floor")
    results.rows[MAIN] = tools
    results.main_envs = len(subject.versions)

    def profile() -> None:
        if profile_target:
            cmd = ["--envmatrix", f"--envmatrix-cache-dir={cache}", *PYTEST_ARGS, *subject.envmatrix_index_args()]
            results.profiles.append(profile_parent("4 environments, bench/project, warm, default jobs, PYTHONDONTWRITEBYTECODE=1", cmd, subject.project, profile_target))

    measure_phases(results, MAIN, tools, sizes, with_cold=True, between=profile)


def built_pythons(cache: Path) -> list[Path]:
    """The interpreters of the environments pytest-envmatrix built, in version order."""
    found = []
    for mark_file in (cache / "envs").glob("*/envmatrix.json"):
        mark = json.loads(mark_file.read_text())
        found.append((mark["label"], mark_file.parent / mark["env_python"]))
    return [python for _label, python in sorted(found, key=lambda pair: _version_key(pair[0]))]


def _version_key(label: str) -> tuple:
    digits = "".join(c if c.isdigit() or c == "." else " " for c in label).split()
    return tuple(int(part) for word in digits for part in word.split(".") if part)


def scale_section(results: Results, sizes: Sizes, tiny: Path, wheels: Path) -> None:
    """Many environments of trivial tests, warm; the floor is plain pytest in those same environments."""
    versions = tiny_versions(sizes.scale_envs)
    subject = Subject(write_trivial_project(WORK / "scale-project", versions, sizes.scale_tests, sizes.tests_per_file),
                      "benchdemo", versions, find_links=(tiny, wheels))
    cache = WORK / "scale-cache"
    rmtree(cache)
    source = "local wheels (uv, --no-index)"
    tools = [
        envmatrix_tool("pytest-envmatrix (default jobs)", subject, cache, source=source),
        envmatrix_tool("pytest-envmatrix --envmatrix-jobs=1", subject, cache, "--envmatrix-jobs=1", parallel=False, source=source),
    ]
    tools[0].warm(bench_env(True))  # builds the environments
    tools += floor_tools(subject, WORK / "scale-floor", pythons=lambda: built_pythons(cache))
    results.rows[SCALE] = tools
    measure_phases(results, SCALE, tools, sizes, with_cold=False)


MACHINE_ROW = "pytest-envmatrix (default jobs), parent in the machine's Python"
MACHINE_ITEMS = "pytest-envmatrix, {n} tests, parent in the machine's Python"


def items_section(results: Results, sizes: Sizes, tiny: Path, wheels: Path, profile_target: Path | None, machine_rows: bool) -> None:
    """One environment, many trivial tests: pytest-envmatrix against plain pytest in that environment.

    Measured at two sizes, so the cost per item can be told from the fixed
    cost of a run (start-up, one child).
    """
    subject = Subject(write_trivial_project(WORK / "items-project", ("1.0",), sizes.many_tests, sizes.tests_per_file),
                      "benchdemo", ("1.0",), find_links=(tiny, wheels))
    cache = WORK / "items-cache"
    rmtree(cache)
    few_paths = [f"tests/test_items_{n:03d}.py" for n in range(sizes.few_tests // sizes.tests_per_file)]
    base = [*PARENT, "--envmatrix", f"--envmatrix-cache-dir={cache}", *PYTEST_ARGS, *subject.envmatrix_index_args()]
    sh(base, bench_env(True), subject.project, "items-build")
    python = built_pythons(cache)[0]
    source = "local wheels (uv, --no-index)"

    def row(name: str, paths: list[str], matrix: bool, machine_parent: bool = False) -> Tool:
        if matrix:
            cmd = [*(MACHINE_PARENT if machine_parent else PARENT), *base[len(PARENT):], *paths]
            run = lambda env: sh(cmd, env, subject.project, slug(name))  # noqa: E731
        else:
            run = lambda env: pytest_in(python, subject, env, slug(name), paths or ["tests"])  # noqa: E731
        return Tool(name, source, False, cold=None, warm=run)

    tools = [
        row(f"pytest-envmatrix, {sizes.many_tests} tests", [], True),
        row(f"plain pytest in that environment, {sizes.many_tests} tests", [], False),
        row(f"pytest-envmatrix, {sizes.few_tests} tests", few_paths, True),
        row(f"plain pytest in that environment, {sizes.few_tests} tests", few_paths, False),
    ]
    if machine_rows:
        tools.append(row(MACHINE_ITEMS.format(n=sizes.many_tests), [], True, machine_parent=True))
    results.rows[ITEMS] = tools

    def profile() -> None:
        if profile_target:
            results.profiles.append(profile_parent(f"1 environment, {sizes.many_tests} trivial tests, warm, PYTHONDONTWRITEBYTECODE=1",
                                                   base[len(PARENT):], subject.project, profile_target))

    measure_phases(results, ITEMS, tools, sizes, with_cold=False, between=profile)


# ---------------------------------------------------------------------------- profiling


PROFILE_DRIVER = r"""
import json, sys
sys.path.append(sys.argv[1])
from pyinstrument import Profiler

args, out = json.loads(sys.argv[2]), sys.argv[3]
profiler = Profiler(interval=0.001)
profiler.start()
import pytest
code = pytest.main(args)
profiler.stop()
root = profiler.last_session.root_frame()

# (label, function, file fragment). Phases: the outermost matching calls, not looked into further.
PHASES = [
    ("start-up: imports, plugins, options, configure", "_prepareconfig", "_pytest/config"),
    ("start-up: imports, plugins, options, configure", "_do_configure", "_pytest/config"),
    ("collection", "pytest_collection", "_pytest/main.py"),
    ("running the items", "pytest_runtestloop", "_pytest/main.py"),
    ("session finish: terminal summary and the other plugins' hooks", "pytest_sessionfinish", ""),
    ("unconfigure", "_ensure_unconfigure", "_pytest/config"),
]
# Details: every matching call, wherever it is (they sit inside the phases above).
DETAILS = [
    ("collection: pytest-envmatrix's pytest_generate_tests, per test function", "pytest_generate_tests", "pytest_envmatrix/plugin.py"),
    ("collection: of which build_matrix (the marker parsed again for each test function)", "build_matrix", "pytest_envmatrix/matrix.py"),
    ("running: pytest-envmatrix's pytest_runtest_protocol (all items)", "pytest_runtest_protocol", "pytest_envmatrix/session.py"),
    ("running: of which waiting for a child's reports (GroupResults.take)", "take", "pytest_envmatrix/session.py"),
    ("unconfigure: of which pytest's gc.collect() calls (gc_collect_harder)", "gc_collect_harder", "_pytest/"),
    ("unconfigure: of which pytest-envmatrix's pytest_unconfigure (work folder removal)", "pytest_unconfigure", "pytest_envmatrix/session.py"),
]
phases, details = {}, {}

def matches(frame, function, fragment):
    return frame.function == function and fragment in (frame.file_path or "")

def walk(frame, phase_found=False, open_details=()):
    for label, function, fragment in DETAILS:
        if label not in open_details and matches(frame, function, fragment):
            details[label] = details.get(label, 0.0) + frame.time
            open_details = (*open_details, label)
    if not phase_found:
        for label, function, fragment in PHASES:
            if matches(frame, function, fragment):
                phases[label] = phases.get(label, 0.0) + frame.time
                phase_found = True
                break
    for child in frame.children:
        walk(child, phase_found, open_details)

walk(root)
text = profiler.output_text(unicode=False, color=False, show_all=False, timeline=False)
json.dump({"exit": int(code), "total": root.time, "phases": phases, "details": details, "text": text}, open(out, "w"))
"""


def profile_parent(title: str, pytest_args: list[str], cwd: Path, target: Path) -> dict:
    """Profile the parent pytest of one warm run with pyinstrument: its main thread, where replay happens."""
    out = WORK / "profile.json"
    env = bench_env(True)
    # once unprofiled: a command line's first run writes the plan and module records its warm runs use
    sh([PARENT[0], "-m", "pytest", *pytest_args], env, cwd, "profile-warm-up")
    start = time.perf_counter()
    sh([PARENT[0], "-c", PROFILE_DRIVER, target, json.dumps(pytest_args), out], env, cwd, "profile")
    wall = time.perf_counter() - start
    data = json.loads(out.read_text())
    if data["exit"] != 0:
        raise BenchError(f"the profiled run exited {data['exit']}; see {LOGS / 'profile.log'}")
    data.update(title=title, wall=wall)
    return data


# ---------------------------------------------------------------------------- the report


def machine_facts(competitors: bool) -> list[tuple[str, str]]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPUs", f"{os.cpu_count()} ({cpu})"),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_version()} ({BASE_PYTHON})"),
        ("pytest", metadata.version("pytest")),
        ("pytest-envmatrix", f"{metadata.version('pytest-envmatrix')} (commit {git_commit()})"),
        ("virtualenv (used by pytest-envmatrix)", metadata.version("virtualenv")),
        ("uv", uv_version()),
    ]
    if competitors:
        facts += [
            ("tox", tool_version(WORK / "tools", "tox")),
            ("tox-uv", tool_version(WORK / "tools-uv", "tox-uv")),
            ("nox", tool_version(WORK / "tools", "nox")),
            ("virtualenv (used by tox and nox)", tool_version(WORK / "tools", "virtualenv")),
            ("pip (seeded by virtualenv)", seeded_pip_version()),
        ]
    return facts


def parent_plugins() -> list[str]:
    """The pytest plugins the parent loads besides pytest's own: they cost start-up time in every run."""
    entry_points = metadata.entry_points()
    # Python 3.9 has neither entry_points(group=...) nor an entry point's .dist
    plugins = entry_points.select(group="pytest11") if hasattr(entry_points, "select") else entry_points.get("pytest11", [])
    found = {ep.dist.name if getattr(ep, "dist", None) else ep.name for ep in plugins}
    return sorted(found, key=str.lower)


def git_commit() -> str:
    """The commit measured; marked when the working tree differed from it (the figures are the tree's)."""
    try:
        commit = output_of(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
        changed = output_of(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "--", "pytest_envmatrix"])
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} with uncommitted changes to pytest_envmatrix/" if changed else commit


def tool_version(venv: Path, dist: str) -> str:
    return output_of([venv_python(venv), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"])


def seeded_pip_version() -> str:
    pythons = list((WORK / "tox-pip").glob("numpy*/bin/python"))
    if not pythons:
        return "unknown"
    return output_of([pythons[0], "-c", "import importlib.metadata as m; print(m.version('pip'))"])


def fmt(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f}"


def ratio(value: float | None, floor: float | None) -> float | None:
    if value is None or not floor:
        return None
    return value / floor


def fmt_ratio(value: float | None) -> str:
    return "" if value is None else f" ({value:.2f}×)"


FLOOR_SEQ, FLOOR_PAR = "floor, in turn", "floor, two at a time"


def floor_of(results: Results, table: str, tool: Tool, column: str) -> float | None:
    return results.median(table, FLOOR_PAR if tool.parallel else FLOOR_SEQ, column)


def comparison_table(results: Results, table: str, columns: Sequence[str]) -> list[str]:
    """Medians in seconds, each with its ratio to the matching floor (in turn / two at a time)."""
    head = "| tool | packages from | " + " | ".join(f"{c}: s (× floor)" for c in columns) + " |"
    lines = [head, "|" + " --- |" * (2 + len(columns))]
    for tool in results.rows[table]:
        cells = []
        for column in columns:
            value = results.median(table, tool.name, column)
            floor = None if tool.name.startswith("floor") else floor_of(results, table, tool, column)
            cells.append(fmt(value) + fmt_ratio(ratio(value, floor)))
        lines.append(f"| {tool.name} | {tool.source} | " + " | ".join(cells) + " |")
    return lines


def items_table(results: Results, sizes: Sizes) -> list[str]:
    lines = ["| tests | PYTHONDONTWRITEBYTECODE | pytest-envmatrix: s | plain pytest: s | difference: ms per test | ratio |", "| --- | --- | --- | --- | --- | --- |"]
    for column, setting in ((WARM_SET, "1"), (WARM_UNSET, "unset")):
        for n in (sizes.many_tests, sizes.few_tests):
            em, plain = items_pair(results, n, column)
            lines.append(items_line(f"{n}", setting, em, plain, n))
        machine = results.median(ITEMS, MACHINE_ITEMS.format(n=sizes.many_tests), column)
        if machine is not None:
            plain = items_pair(results, sizes.many_tests, column)[1]
            lines.append(items_line(f"{sizes.many_tests}, parent in the machine's Python", setting, machine, plain, sizes.many_tests))
    return lines


def items_line(tests: str, setting: str, em: float | None, plain: float | None, n: int) -> str:
    diff = (em - plain) / n * 1000 if em is not None and plain is not None else None
    return f"| {tests} | {setting} | {fmt(em)} | {fmt(plain)} | {fmt(diff)} | {fmt(ratio(em, plain))}× |"


def items_pair(results: Results, n: int, column: str) -> tuple[float | None, float | None]:
    return (results.median(ITEMS, f"pytest-envmatrix, {n} tests", column),
            results.median(ITEMS, f"plain pytest in that environment, {n} tests", column))


def marginal_ms(results: Results, sizes: Sizes, column: str) -> float | None:
    """Extra parent cost per test, fixed costs taken out: the slope between the two sizes."""
    many, few = items_pair(results, sizes.many_tests, column), items_pair(results, sizes.few_tests, column)
    if None in many or None in few:
        return None
    return ((many[0] - many[1]) - (few[0] - few[1])) / (sizes.many_tests - sizes.few_tests) * 1000


@dataclass
class Target:
    text: str
    measured: str
    met: bool | None  # None: not measured in this mode


def targets(results: Results, sizes: Sizes) -> list[Target]:
    """The targets set for pytest-envmatrix, each checked against this run's medians."""
    envs = f"{results.main_envs} envs"
    m = lambda row, col: results.median(MAIN, row, col)  # noqa: E731
    em, em1 = "pytest-envmatrix (default jobs)", "pytest-envmatrix --envmatrix-jobs=1"
    out = []
    for column, setting in ((WARM_SET, "PYTHONDONTWRITEBYTECODE=1"), (WARM_UNSET, "PYTHONDONTWRITEBYTECODE unset")):
        r1 = ratio(m(em1, column), m(FLOOR_SEQ, column))
        out.append(Target(f"warm, {envs}, --envmatrix-jobs=1 ≤ 1.25× the floor in turn ({setting})", fmt_x(r1), le(r1, 1.25)))
        r2 = ratio(m(em, column), m(FLOOR_PAR, column))
        out.append(Target(f"warm, {envs}, default jobs ≤ 1.25× the floor two at a time ({setting})", fmt_x(r2), le(r2, 1.25)))
    for column, setting in ((WARM_SET, "PYTHONDONTWRITEBYTECODE=1"), (WARM_UNSET, "PYTHONDONTWRITEBYTECODE unset")):
        r3 = ratio(m(em, column), m("tox p + tox-uv", column))
        out.append(Target(f"warm, default jobs no slower than tox p + tox-uv ({setting})", vs(m(em, column), m("tox p + tox-uv", column)), le(r3, 1.0)))
    r4 = ratio(m(em, COLD), m("tox p + tox-uv", COLD))
    out.append(Target("cold, default jobs faster than tox p + tox-uv", vs(m(em, COLD), m("tox p + tox-uv", COLD)), None if r4 is None else r4 < 1.0))
    r5 = ratio(m(em, COLD), m(FLOOR_PAR, COLD))
    out.append(Target("cold, default jobs ≤ 1.3× the cold floor two at a time", fmt_x(r5), le(r5, 1.3)))
    for column, setting in ((WARM_SET, "PYTHONDONTWRITEBYTECODE=1"), (WARM_UNSET, "PYTHONDONTWRITEBYTECODE unset")):
        em_n, plain_n = items_pair(results, sizes.many_tests, column)
        per_item = (em_n - plain_n) / sizes.many_tests * 1000 if None not in (em_n, plain_n) else None
        slope = marginal_ms(results, sizes, column)
        measured = f"{fmt(per_item)} ms per test overall; {fmt(slope)} ms per test marginal"
        out.append(Target(f"per-item overhead in the parent < 1 ms ({setting})", measured, None if per_item is None else per_item < 1.0))
        r7 = ratio(em_n, plain_n)
        out.append(Target(f"{sizes.many_tests} tests within 1.3× of plain pytest ({setting})", fmt_x(r7), le(r7, 1.3)))
    return out


def le(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def fmt_x(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f}×"


def vs(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None:
        return "not measured"
    return f"{ours:.2f} s vs {theirs:.2f} s ({ours / theirs:.2f}×)"


def verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def render(results: Results, sizes: Sizes, smoke: bool, competitors: bool, elapsed: float) -> str:
    out = ["# Performance", ""]
    if smoke:
        out += ["Smoke run: tiny sizes, made-up local packages, no competitors; its figures say only that the benchmark works.", ""]
    out += [
        "How long pytest-envmatrix takes to build and run a matrix of environments, next to",
        "tox, tox with tox-uv, nox and `uv run`, and next to the floor: plain pytest run in",
        "prebuilt environments, which no tool that runs the same tests in the same",
        "environments can beat.",
        "",
        f"Produced by `{'python bench/run.py --smoke' if smoke else COMMAND}` (from the repository root) in {elapsed / 60:.0f} minutes.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in machine_facts(competitors)],
        f"| CPUs kept busy by other processes during the counted runs | median {statistics.median(results.foreign):.2f}, max {max(results.foreign):.2f} |",
        f"| runs measured again because other processes used more than {FOREIGN_LIMIT} CPU | {results.repeated} |",
        "",
        *method_notes(sizes, smoke),
        "",
        "## Four environments" if not smoke else "## Environments",
        "",
        *main_intro(smoke),
        "",
        *comparison_table(results, MAIN, (COLD, WARM_SET, WARM_UNSET)),
        "",
        f"## Scale: {sizes.scale_envs} environments × {sizes.scale_tests} trivial tests, warm",
        "",
        f"A made-up package at {sizes.scale_envs} versions, built as wheels in a temporary folder and",
        "installed with `--envmatrix-find-links` and `--envmatrix-no-index`: no network. The floor runs",
        "plain pytest in the environments pytest-envmatrix built.",
        "",
        *comparison_table(results, SCALE, (WARM_SET, WARM_UNSET)),
        "",
        "## Many tests in one environment, warm",
        "",
        "`pytest --envmatrix` against plain `python -m pytest` inside the environment it built, on",
        f"{sizes.many_tests} trivial tests and on {sizes.few_tests} of them. \"ms per test\" is the whole difference divided",
        "by the number of tests (start-up and the child included); the marginal figure in the",
        "targets below is the slope between the two sizes, which leaves the fixed costs out.",
        "",
        *items_table(results, sizes),
        "",
        *targets_section(results, sizes),
    ]
    for data in results.profiles:
        out += profile_section(data)
    return "\n".join(out) + "\n"


def method_notes(sizes: Sizes, smoke: bool) -> list[str]:
    return [
        "## Method",
        "",
        f"- Warm figures are medians of {sizes.warm_runs} runs, after one unmeasured run; cold figures are",
        f"  medians of {sizes.cold_runs} run{'s' if sizes.cold_runs > 1 else ''}, after one unmeasured round that fills uv's cache. Each",
        "  figure is wall-clock time (`time.perf_counter`) around the `subprocess.run` calls of one run.",
        "  Runs go round-robin over the tools, so drift on the machine touches all of them alike.",
        f"  A run during which other processes kept more than {FOREIGN_LIMIT} CPU busy (from /proc/stat, less this",
        f"  benchmark's own CPU time) is measured again, at most {sizes.retries} more time{'s' if sizes.retries != 1 else ''}; the last one counts.",
        "- Cold: the tool's environments are deleted before each run; package caches stay warm.",
        "  Warm: the environments exist (tox reuses them, nox runs with `-R`, pytest-envmatrix finds them",
        "  in its cache).",
        "- uv-based tools (pytest-envmatrix's default installer, tox-uv, nox's uv backend, the floor)",
        "  install from the package index through one uv cache in `bench/.work/`, filled before",
        "  measuring; `uv run` runs with `--offline` from that cache. pip-based tools (tox and nox with",
        "  virtualenv, `--envmatrix-installer=pip`) install from a local folder of wheels made once with",
        "  `pip download` (numpy 1.26.4/2.0.2/2.1.3/2.2.6, pytest and its dependencies, flit_core),",
        "  passed as `PIP_FIND_LINKS` + `PIP_NO_INDEX` or `--envmatrix-find-links` +",
        "  `--envmatrix-no-index`, so they too start with every package on local disk.",
        "- Every tool runs `pytest -q -p no:cacheprovider` on the same tests, with the same pytest",
        f"  ({PYTEST_PIN}) in every environment, and the project installed editable where there is one.",
        "- How a cold run gets the editable build of `bench/project`: pytest-envmatrix with uv names the",
        "  project in a requirements file, so uv takes the build from its cache (made in the unmeasured",
        "  round; uv keys it on `pyproject.toml`'s modification time); tox builds it once per run and",
        "  installs that wheel everywhere; the floor and nox's uv backend name it on uv's command line,",
        "  which rebuilds it for every environment (0.5-0.8 s each); pip-based tools build it for every",
        "  environment.",
        "- Ratios (×) compare a sequential tool with the floor in turn and a parallel one (pytest-envmatrix",
        "  with default jobs, `tox p`) with the floor two at a time. The cold floor is, per environment,",
        "  `uv venv` + `uv pip install` + the first pytest run; the warm floor is pytest in those venvs.",
        "- The machine exports PYTHONDONTWRITEBYTECODE=1. Cold runs keep it; warm runs are measured with",
        "  it set, then without it (after one unmeasured run that writes the bytecode). pytest-envmatrix",
        "  redirects bytecode into its cache's `pycache` folder when the variable is set (the standard",
        "  library's own bytecode linked in); uv does not byte-compile at install, pip does.",
        "- The competitors run from their own venvs in `bench/.work/` (tox, nox; tox + tox-uv), with the",
        "  same uv; `bench/tox.ini` and `bench/noxfile.py` are their configurations.",
        "- The parent `pytest --envmatrix` runs in a venv of its own (`bench/.work/parent`), made with",
        "  `uv pip install --compile-bytecode -e .[uv]` and the same pytest: the plugin and what it",
        "  depends on, as a CI job installs it. Rows marked \"parent in the machine's Python\" run it in",
        "  the Python running the benchmark instead, which loads every pytest plugin installed there",
        f"  ({', '.join(parent_plugins())}): what those plugins add is theirs, not the plugin's.",
    ]


def main_intro(smoke: bool) -> list[str]:
    if smoke:
        return ["A generated project of trivial tests on two versions of a made-up local package."]
    return [
        "`bench/project`: a small numpy module and 20 tests marked",
        "`envmatrix(numpy=[\"1.26.4\", \"2.0.2\", \"2.1.3\", \"2.2.6\"])`: 4 environments, 80 test runs.",
        "tox rebuilds and reinstalls the editable project on every run, warm or not: that is how tox 4",
        "treats `package = editable`.",
    ]


def targets_section(results: Results, sizes: Sizes) -> list[str]:
    checked = targets(results, sizes)
    lines = ["## Targets", "", "| target | measured | |", "| --- | --- | --- |"]
    lines += [f"| {t.text} | {t.measured} | {verdict(t.met)} |" for t in checked]
    missed = [t for t in checked if t.met is False]
    lines.append("")
    if missed:
        lines.append(f"pytest-envmatrix misses {len(missed)} of the {sum(t.met is not None for t in checked)} targets measured here: "
                     + "; ".join(f"{t.text}: {t.measured}" for t in missed) + "."
                     + (" The profiles below show where the parent's time goes." if results.profiles else ""))
    else:
        lines.append("pytest-envmatrix meets every target measured here.")
    return [*lines, ""]


def profile_section(data: dict) -> list[str]:
    return [
        f"## Profile: {data['title']}",
        "",
        f"pyinstrument (1 ms sampling) on the parent pytest's main thread; {data['total']:.2f} s profiled",
        f"({data['wall']:.2f} s wall-clock, profiler included). Building and running the children happens in",
        "worker threads and child processes: the main thread sees it as waiting.",
        "",
        *sections.profile_tables(data),
    ]


# ---------------------------------------------------------------------------- main


def prepare_full() -> Path:
    """Wheels, tool venvs, pyinstrument: everything the full run installs, made once and reused."""
    ensure_wheels([[f"numpy=={v}"] for v in NUMPY_VERSIONS] + [[PYTEST_PIN, FLIT_CORE]])
    uv_pin = f"uv=={uv_version()}"  # the competitors' uv is the plugin's uv
    ensure_tool_venv("tools", ["tox", "nox", "virtualenv", uv_pin])
    ensure_tool_venv("tools-uv", ["tox", "tox-uv", uv_pin])
    return ensure_pyinstrument()


KEPT = (
    ("<!-- link-modes -->", "<!-- /link-modes -->"),  # written by bench/link_modes.py
    ("<!-- blas-threads -->", "<!-- /blas-threads -->"),  # written by bench/blas_threads.py
    ("<!-- numpy-top -->", "<!-- /numpy-top -->"),  # written by bench/numpy_top.py, which a full run runs last
    ("<!-- heavy-disk -->", "<!-- /heavy-disk -->"),  # written by bench/heavy_disk.py
    ("<!-- xdist -->", "<!-- /xdist -->"),  # written by bench/xdist.py
)


def kept_sections(output: Path) -> str:
    """The sections other scripts wrote into the report, carried over when this one rewrites it."""
    try:
        text = output.read_text(encoding="utf-8")
    except OSError:
        return ""
    kept = ""
    for start, end in KEPT:
        if start in text and end in text:
            kept += "\n" + start + text.split(start, 1)[1].split(end, 1)[0] + end + "\n"
    return kept


def use_work_folder(path: Path, wheels: Path | None = None) -> None:
    """Point the run at its work folder: the smoke run keeps its environments apart from the full run's."""
    global WORK, LOGS, WHEELS
    WORK, LOGS = path, path / "logs"
    if wheels is not None:
        WHEELS = wheels
    WORK.mkdir(parents=True, exist_ok=True)


def run(smoke: bool, output: Path, work: Path | None = None) -> None:
    global PARENT
    sizes = SMOKE if smoke else FULL
    if work is not None:  # everything, the wheel folder included, below it
        use_work_folder(work.resolve(), work.resolve() / "wheels")
    else:
        use_work_folder(BENCH / ".work" / "smoke" if smoke else BENCH / ".work")
    PARENT = ensure_parent_venv()
    started = time.perf_counter()
    results = Results()
    plugin_pycache = REPO / "pytest_envmatrix" / "__pycache__"
    had_pycache = plugin_pycache.exists()
    tiny = Path(tempfile.mkdtemp(prefix="envmatrix-bench-wheels-", dir=WORK))
    try:
        build_tiny_wheels(tiny, max(2, sizes.scale_envs))
        if smoke:
            ensure_wheels([[PYTEST_PIN, FLIT_CORE]])
            profile_target = None
            versions = tiny_versions(2)
            subject = Subject(write_trivial_project(WORK / "main-project", versions, sizes.few_tests, sizes.tests_per_file),
                              "benchdemo", versions, find_links=(tiny, WHEELS))
        else:
            profile_target = prepare_full()
            subject = Subject(PROJECT, "numpy", NUMPY_VERSIONS, editable=PROJECT)
            clean_bytecode(PROJECT)
        main_section(results, sizes, subject, competitors=not smoke, profile_target=profile_target)
        scale_section(results, sizes, tiny, WHEELS)
        items_section(results, sizes, tiny, WHEELS, profile_target, machine_rows=not smoke)
        report = render(results, sizes, smoke, competitors=not smoke, elapsed=time.perf_counter() - started)
    finally:
        rmtree(tiny)
        if not smoke:
            clean_bytecode(PROJECT)
        if not had_pycache:
            rmtree(plugin_pycache)  # written by the parent in the runs without PYTHONDONTWRITEBYTECODE
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report + kept_sections(output), encoding="utf-8")
    if not smoke:  # numpy imported at the top, markers and suite-wide: a section of its own, in its own process
        sh([sys.executable, BENCH / "numpy_top.py", f"--output={output}", f"--work-dir={WORK}"], os.environ.copy(), REPO, "numpy-top")
    print(f"bench: wrote {output} ({(time.perf_counter() - started) / 60:.1f} min)", file=sys.stderr)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no competitors, no numpy: checks the benchmark runs")
    parser.add_argument("--output", type=Path, help="where to write the report (full: docs/performance.md; smoke: a temporary file)")
    parser.add_argument(
        "--work-dir", type=Path, metavar="DIR",
        help="where everything the run installs or builds goes, the wheel folder included "
        "(default: bench/.work, the smoke run bench/.work/smoke, both sharing bench/.work/wheels)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.smoke:
        output = args.output or Path(tempfile.mkdtemp(prefix="envmatrix-bench-")) / "performance.md"
        if output.resolve() == DOC.resolve():
            raise SystemExit("--smoke does not write docs/performance.md: its figures are not the benchmark's")
    else:
        output = args.output or DOC
    try:
        run(args.smoke, output, args.work_dir)
    except BenchError as exc:
        print(f"bench: a measured command failed:\n{exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
