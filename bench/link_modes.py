#!/usr/bin/env python
"""What each uv link mode costs a cold run, in one command: ``python bench/link_modes.py``.

pytest-envmatrix fills environments with copies of uv's cached files
(``--envmatrix-link-mode=copy``), so a test that writes an installed file
cannot change uv's cache or another environment. uv's own default is hard
links. This measures the difference where it shows: a cold run of
``bench/project`` against four numpy versions (the environments deleted
before each run, uv's cache warm), once per link mode, the modes alternating
round by round so drift on the machine touches them alike. It reuses the
machinery of ``bench/run.py`` (same parent venv, same package sources, same
work folder) and writes its table into ``docs/performance.md`` between the
markers ``<!-- link-modes -->`` and ``<!-- /link-modes -->``, which
``bench/run.py`` carries over when it rewrites the file.

``--runs N`` sets the measured rounds (default 5); ``--output`` another file.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402  (bench/run.py: the benchmark's machinery)
import sections  # noqa: E402  (bench/sections.py: each benchmark's part of docs/performance.md)

MODES = ("hardlink", "copy", "clone")
START, END = "<!-- link-modes -->", "<!-- /link-modes -->"
COMMAND = "python bench/link_modes.py"


def reflinks_supported(folder: Path) -> bool:
    """Whether the work folder's filesystem makes copy-on-write copies (else uv's clone falls back to copying)."""
    source, target = folder / "reflink-probe", folder / "reflink-probe-copy"
    source.write_bytes(b"probe")
    try:
        proc = subprocess.run(["cp", "--reflink=always", str(source), str(target)], capture_output=True)
        return proc.returncode == 0
    except FileNotFoundError:
        return False
    finally:
        for path in (source, target):
            path.unlink(missing_ok=True)


def filesystem_of(folder: Path) -> str:
    try:
        return subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", str(folder)], capture_output=True, text=True).stdout.strip() or "unknown"
    except FileNotFoundError:
        return "unknown"


def linked(venv: Path) -> bool:
    """Whether an installed file of ``venv`` is a hard link (into uv's cache): what ``clone`` falls back to."""
    (installed,) = venv.glob("lib/python*/site-packages/numpy/__init__.py")
    return installed.stat().st_nlink > 1


def measure(runs: int, foreign_load: list[float]) -> dict[str, list[float]]:
    """Seconds per mode; ``foreign_load`` gets the CPUs other processes kept busy during each counted run."""
    subject = bench.Subject(bench.PROJECT, "numpy", bench.NUMPY_VERSIONS, editable=bench.PROJECT)
    tools = [
        bench.envmatrix_tool(mode, subject, bench.WORK / f"envmatrix-cache-{mode}", f"--envmatrix-link-mode={mode}", source="index via warm uv cache")
        for mode in MODES
    ]
    env = bench.bench_env(True)
    figures: dict[str, list[float]] = {mode: [] for mode in MODES}
    bench.clean_bytecode(bench.PROJECT)
    try:
        for label in ["warm-up", *[f"{n + 1}/{runs}" for n in range(runs)]]:
            for tool in tools:
                tool.reset()
                seconds, foreign = bench.timed_alone(lambda: tool.cold(env))
                print(f"bench: link mode | {label} | {tool.name}: {seconds:.2f} s (other processes: {foreign:.2f} CPUs)", file=sys.stderr, flush=True)
                if label != "warm-up":
                    figures[tool.name].append(seconds)
                    foreign_load.append(foreign)
    finally:
        bench.clean_bytecode(bench.PROJECT)
        for tool in tools:
            tool.reset()
    return figures


def measure_installs(runs: int, hard_linked: dict[str, bool]) -> dict[str, list[float]]:
    """Seconds ``uv pip install`` takes to fill four new environments (numpy and pytest), per mode.

    The step the link mode changes, alone: the environments are made (and
    removed) outside the timed part, so the figure is less exposed to noise
    than the whole run.
    """
    env = bench.bench_env(True)
    figures: dict[str, list[float]] = {mode: [] for mode in MODES}
    scratch = bench.WORK / "link-mode-installs"
    try:
        for label in ["warm-up", *[f"{n + 1}/{runs}" for n in range(runs)]]:
            for mode in MODES:
                bench.rmtree(scratch)
                venvs = [scratch / version for version in bench.NUMPY_VERSIONS]
                for venv in venvs:
                    bench.sh([bench.UV, "venv", "--quiet", "--python", bench.BASE_PYTHON, venv], env, bench.WORK, "link-mode-venv")

                def install() -> None:
                    for version, venv in zip(bench.NUMPY_VERSIONS, venvs):
                        command = [bench.UV, "pip", "install", "--quiet", "--python", bench.venv_python(venv), "--link-mode", mode,
                                   f"numpy=={version}", bench.PYTEST_PIN]
                        bench.sh(command, env, bench.WORK, f"link-mode-install-{mode}")

                seconds, foreign = bench.timed_alone(install)
                print(f"bench: link mode install | {label} | {mode}: {seconds:.2f} s (other processes: {foreign:.2f} CPUs)", file=sys.stderr, flush=True)
                hard_linked[mode] = linked(venvs[0])
                if label != "warm-up":
                    figures[mode].append(seconds)
    finally:
        bench.rmtree(scratch)
    return figures


def render(figures: dict[str, list[float]], installs: dict[str, list[float]], runs: int, reflinks: bool, filesystem: str,
           foreign_load: list[float], hard_linked: dict[str, bool]) -> str:
    base = statistics.median(figures["hardlink"])
    install_base = statistics.median(installs["hardlink"])
    lines = [
        START,
        "## Link modes",
        "",
        f"Produced by `{COMMAND}` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC,",
        f"pytest-envmatrix commit {bench.output_of(['git', '-C', str(bench.REPO), 'rev-parse', '--short', 'HEAD']).strip()}, uv {bench.uv_version()}.",
        "",
        "How uv puts packages from its cache into an environment (`--envmatrix-link-mode`).",
        "The default is `copy`: with `hardlink` (uv's own default) a test that writes an",
        "installed file in place writes it in uv's cache and in every environment linked",
        "from it. A cold run of `bench/project` against four numpy versions, default jobs:",
        "the environments are deleted before each run, uv's cache is warm. Medians of",
        f"{runs} runs after one unmeasured round, the modes alternating round by round.",
        f"The work folder's filesystem is {filesystem}; it {'supports' if reflinks else 'does not support'}",
        "copy-on-write copies (`cp --reflink=always`)."
        + (" There uv's `clone` silently fell back to hard links (the installed files had a link count above 1):"
           " its figures are those of `hardlink`, and it protects nothing." if hard_linked.get("clone") else ""),
        f"Other processes kept a median of {statistics.median(foreign_load):.2f} CPUs (max {max(foreign_load):.2f}) of the machine's",
        f"{bench.os.cpu_count()} busy during the counted runs.",
        "",
        "The second table times only the step the link mode changes: `uv pip install`",
        "of numpy and pytest into four new, empty environments, one after the other.",
        "",
        "| link mode | cold run (s) | vs hardlink | runs (s) |",
        "| --- | --- | --- | --- |",
    ]
    for mode in MODES:
        median = statistics.median(figures[mode])
        runs_text = ", ".join(f"{s:.2f}" for s in figures[mode])
        lines.append(f"| {mode} | {median:.2f} | {median / base:.2f}× | {runs_text} |")
    lines += [
        "",
        "| link mode | `uv pip install` into 4 new environments (s) | vs hardlink | runs (s) |",
        "| --- | --- | --- | --- |",
    ]
    for mode in MODES:
        median = statistics.median(installs[mode])
        runs_text = ", ".join(f"{s:.2f}" for s in installs[mode])
        lines.append(f"| {mode} | {median:.2f} | {median / install_base:.2f}× | {runs_text} |")
    lines += [
        "",
        "The main table above was measured with uv's default, `hardlink`, before `copy`",
        "became the default; add the difference in this table to its cold figures.",
        "`--envmatrix-rebuild` checks every installed file against its RECORD hash and",
        "reinstalls only what differs without uv's cache; hashing costs a rebuild about",
        "as much as reading the environment once.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(output: Path, section: str) -> None:
    sections.write_section(output, section, START, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", type=Path, default=bench.DOC)
    args = parser.parse_args(argv)
    bench.use_work_folder(bench.BENCH / ".work")
    bench.PARENT = bench.ensure_parent_venv()
    try:
        foreign_load: list[float] = []
        figures = measure(args.runs, foreign_load)
        hard_linked: dict[str, bool] = {}
        installs = measure_installs(args.runs, hard_linked)
    except bench.BenchError as exc:
        print(f"bench: a measured command failed:\n{exc}", file=sys.stderr)
        return 1
    write_section(args.output, render(figures, installs, args.runs, reflinks_supported(bench.WORK), filesystem_of(bench.WORK), foreign_load, hard_linked))
    print(f"bench: wrote the link-mode table into {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
