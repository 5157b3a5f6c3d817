#!/usr/bin/env python
"""What N environments of a large package cost on disk, per link mode: ``python bench/heavy_disk.py``.

Builds N environments that each hold torch (the CPU wheel of a local
folder, given to torch as its own index, so nothing else can be taken for
it) and one version of a made-up package, which is what makes them N
environments: ``envmatrix(torch=["2.13.0"], emx_pad=["1.0", ..., "N.0"])``.
Once per link mode (and once with the default, ``copy``, and torch
shared: ``--envmatrix-shared-package=torch``), each with an empty environment cache and a uv cache of
its own, and then measures with ``du``, which counts a hard-linked file
once per invocation:

- one environment; all N; all N counting every link (``du -l``: what N
  private copies would take); uv's cache; uv's cache and the N environments
  together (what the disk really gives them).

torch's dependencies (filelock, sympy, networkx, ...) and pytest come from
the default index. Writes its table into ``docs/performance.md`` between
``<!-- heavy-disk -->`` and ``<!-- /heavy-disk -->`` (``bench/run.py``
carries the section over when it rewrites the file).

``--envs N`` (default 10), ``--wheels DIR`` (default: the folder in
``PIP_FIND_LINKS`` holding the torch wheel), ``--modes "copy;hardlink"`` (of
the names in ``MODES``), ``--output FILE``. Needs the plugin installed in the Python that runs it
(``pip install -e ".[uv]"``) and about N x 0.7 GB free for ``copy``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import link_modes  # noqa: E402  (bench/link_modes.py: the filesystem probes)
import run as bench  # noqa: E402  (bench/run.py: the benchmark's machinery)
import sections  # noqa: E402  (bench/sections.py: each benchmark's part of docs/performance.md)

TORCH = "2.13.0"
START, END = "<!-- heavy-disk -->", "<!-- /heavy-disk -->"
COMMAND = "python bench/heavy_disk.py"
WORK = bench.BENCH / ".work" / "heavy-disk"
#: The ways measured: name → the options that give it.
MODES = {
    "copy": ["--envmatrix-link-mode=copy"],
    "copy, torch shared": ["--envmatrix-link-mode=copy", "--envmatrix-shared-package=torch"],
    "hardlink": ["--envmatrix-link-mode=hardlink"],
    "clone": ["--envmatrix-link-mode=clone"],
}


def torch_folder() -> Path | None:
    for entry in os.environ.get("PIP_FIND_LINKS", "").split():
        if any(Path(entry).glob(f"torch-{TORCH}+cpu-*.whl")):
            return Path(entry)
    return None


def du(*paths: Path, count_links: bool = False) -> int:
    """Bytes ``du`` gives for the paths together (GNU du: each inode once, unless ``count_links``)."""
    command = ["du", "-s", "-c", "--block-size=1", *(["-l"] if count_links else []), *map(str, paths)]
    last = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return int(last.split()[0])


def write_project(root: Path, envs: int) -> None:
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    versions = [f"{n}.0" for n in range(1, envs + 1)]
    (root / "test_heavy.py").write_text(
        "import pytest\n\n\n"
        f"@pytest.mark.envmatrix(torch=[{TORCH!r}], emx_pad={versions!r})\n"
        "def test_torch():\n"
        "    import torch\n\n"
        f"    assert torch.__version__ == {TORCH + '+cpu'!r}\n"
        "    assert float(torch.ones(3).sum()) == 3.0\n",
        encoding="utf-8",
    )
    pads = root / "pads"
    pads.mkdir()
    for version in versions:
        bench.build_wheel(pads, "emx_pad", version, {"emx_pad/__init__.py": f"VERSION = {version!r}\n"})


def measure(mode: str, envs: int, wheels: Path) -> dict:
    work = WORK / mode.replace(", ", "-").replace(" ", "-")
    bench.rmtree(work)
    project, cache, uv_cache = work / "project", work / "cache", work / "uv-cache"
    write_project(project, envs)
    env = {**os.environ, "UV_CACHE_DIR": str(uv_cache)}
    options = [
        f"--envmatrix-cache-dir={cache}", f"--envmatrix-find-links={project / 'pads'}",
        f"--envmatrix-package-index=torch={wheels}", *MODES[mode], "--envmatrix-installer=uv",
        "-p", "no:cacheprovider", "-q",
    ]
    start = time.perf_counter()
    bench.sh([sys.executable, "-m", "pytest", "--envmatrix", *options], env, project, f"heavy-disk-{work.name}")
    seconds = time.perf_counter() - start
    listed = subprocess.run([sys.executable, "-m", "pytest", "--envmatrix-list", *options], cwd=project, env=env,
                            capture_output=True, text=True, check=True).stdout
    on_disk = [line.strip() for line in listed.splitlines() if line.strip().startswith("on disk:")]
    built = sorted(p for p in (cache / "envs").iterdir() if p.is_dir())
    (installed,) = built[0].glob("lib/python*/site-packages/torch/__init__.py")
    figures = {
        "mode": mode,
        "seconds": seconds,
        "one": du(built[0]),
        "all": du(cache / "envs"),
        "all_counted": du(cache / "envs", count_links=True),
        "uv": du(uv_cache),
        "together": du(uv_cache, cache / "envs"),
        "hard_linked": installed.stat().st_nlink > 1,
        "listed": on_disk[0] if on_disk else "",
        "envs": len(built),
    }
    bench.rmtree(work)
    return figures


def gb(size: int) -> str:
    return f"{size / 1e9:.2f}"


def render(rows: list[dict], envs: int, wheels: Path) -> str:
    filesystem = link_modes.filesystem_of(WORK)
    reflinks = link_modes.reflinks_supported(WORK)
    commit = bench.output_of(["git", "-C", str(bench.REPO), "rev-parse", "--short", "HEAD"]).strip()
    lines = [
        START,
        "## Disk: N environments of a large package",
        "",
        f"Produced by `{COMMAND} --envs {envs}` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC,",
        f"pytest-envmatrix commit {commit}, uv {bench.uv_version()}, torch {TORCH}+cpu from `{wheels}`",
        f"(given to torch as its own index), CPython {sys.version.split()[0]}.",
        "",
        f"{envs} environments, each holding torch and one version of a made-up package",
        f"(`envmatrix(torch=[\"{TORCH}\"], emx_pad=[\"1.0\", ..., \"{envs}.0\"])`), built once per link mode with an",
        "empty environment cache and a uv cache of its own. Sizes in GB from `du --block-size=1`, which counts",
        "a hard-linked file once per invocation; \"every link counted\" is `du -l`, what private copies would take.",
        f"The work folder's filesystem is {filesystem}; it {'supports' if reflinks else 'does not support'} copy-on-write",
        "copies (`cp --reflink=always`). \"build\" is the wall-clock time of the `pytest --envmatrix` run (all",
        f"environments built, one test in each), on a machine whose 1-minute load average was {os.getloadavg()[0]:.1f} at the end:",
        "a rough figure, not a comparison.",
        "",
        "| link mode | torch hard-linked to uv's cache | one environment | all environments | all, every link counted | uv's cache | uv's cache + all environments | build (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['mode']} | {'yes' if row['hard_linked'] else 'no'} | {gb(row['one'])} | {gb(row['all'])} | {gb(row['all_counted'])} | {gb(row['uv'])} "
            f"| {gb(row['together'])} | {row['seconds']:.0f} |"
        )
    lines += ["", "What `--envmatrix-list` says of the first environment:", ""]
    lines += [f"- {row['mode']}: `{row['listed']}`" for row in rows]
    if any(row["mode"] == "clone" for row in rows) and not reflinks:
        lines += [
            "",
            "Here uv's `clone` falls back to hard links, which pytest-envmatrix replaces by copies (a write in one",
            "environment must stay there): on this filesystem `clone` costs what `copy` costs.",
        ]
    by_mode = {row["mode"]: row for row in rows}
    if {"copy", "copy, torch shared", "hardlink"} <= by_mode.keys():
        lines += [
            "",
            f"With the default `copy`, {envs} torch environments cost {envs} copies of torch ({gb(by_mode['copy']['all'])} GB).",
            f"Shared packages (`envmatrix_shared_packages = torch`) bring them to {gb(by_mode['copy, torch shared']['all'])} GB: about one torch,",
            "plus each environment's own copies of the small packages, every package but torch staying private;",
            f"`hardlink` shares everything ({gb(by_mode['hardlink']['all'])} GB). Where the filesystem makes copy-on-write copies,",
            "`clone` shares blocks with every file still private; where it cannot, `clone` is `copy`.",
        ]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(output: Path, section: str) -> None:
    sections.write_section(output, section, START, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, default=10)
    parser.add_argument("--wheels", type=Path, default=None)
    parser.add_argument("--modes", default=";".join(MODES), help=f"';'-separated, of: {'; '.join(MODES)}")
    parser.add_argument("--output", type=Path, default=bench.DOC)
    args = parser.parse_args(argv)
    wheels = args.wheels or torch_folder()
    if wheels is None:
        print(f"bench: no torch-{TORCH}+cpu wheel in PIP_FIND_LINKS; name its folder with --wheels", file=sys.stderr)
        return 2
    bench.use_work_folder(bench.BENCH / ".work")
    WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for mode in args.modes.split(";"):
            row = measure(mode, args.envs, wheels.resolve())
            print(f"bench: heavy disk | {mode}: {row}", file=sys.stderr, flush=True)
            rows.append(row)
    except bench.BenchError as exc:
        print(f"bench: a measured command failed:\n{exc}", file=sys.stderr)
        return 1
    write_section(args.output, render(rows, args.envs, wheels))
    print(f"bench: wrote the disk table into {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
