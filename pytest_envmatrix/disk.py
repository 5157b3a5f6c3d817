"""What an environment costs on disk, for ``--envmatrix-list``, and which of its files it shares.

A file hard-linked into an environment from uv's cache (link mode
``hardlink``, or ``clone`` where the filesystem cannot clone) takes its
blocks once however many environments link it: each inode is counted once
here, as ``du`` counts it, and the part in files that have links outside
the environment is told apart. Blocks shared by copy-on-write clones
(btrfs, XFS) do not show in a file's metadata: there the figure is what the
environment would take on its own, more than the disk really gives it.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

from packaging.utils import canonicalize_name

from .integrity import site_packages


@dataclass(frozen=True)
class Footprint:
    total: int  # bytes of the files' blocks, each inode once
    shared: int  # of which in files with links outside the environment (uv's cache, other environments)

    def describe(self) -> str:
        return f"on disk: {megabytes(self.total)} (hard links counted once), {megabytes(self.shared)} of it shared with uv's cache or other environments"


def footprint(path: Path) -> Footprint:
    """The environment's files, walked without following links; what cannot be read is left out."""
    seen: dict[tuple[int, int], list[int]] = {}  # inode → [links seen here, links in all, bytes]
    for root, dirs, files in os.walk(path):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            entry = seen.setdefault((stat.st_dev, stat.st_ino), [0, stat.st_nlink, _bytes(stat)])
            entry[0] += 1
    total = sum(size for _, _, size in seen.values())
    shared = sum(size for here, links, size in seen.values() if links > here)
    return Footprint(total, shared)


def _bytes(stat: os.stat_result) -> int:
    blocks = getattr(stat, "st_blocks", None)  # what du counts; Windows has no blocks, only sizes
    return blocks * 512 if blocks is not None else stat.st_size


def megabytes(size: int) -> str:
    """Decimal units, as ``--envmatrix-prune`` reports what it freed."""
    if size >= 1e9:
        return f"{size / 1e9:.2f} GB"
    if size >= 1e6:
        return f"{size / 1e6:.1f} MB"
    return f"{size / 1e3:.1f} kB"


def make_private(env: Path, shared: Iterable[str] = ()) -> int:
    """Replace each hard-linked file of ``env`` by a copy of its own, except the files of the ``shared`` packages.

    A hard link is the same file as uv's cache entry and every other
    environment linked from it: a test that writes it in place writes them
    all. A copy here costs what ``--link-mode copy`` would have cost for it.
    Returns the number of files copied.
    """
    keep = _files_of(env, {canonicalize_name(name) for name in shared})
    copied = 0
    for root, _dirs, files in os.walk(env):
        for name in files:
            path = os.path.join(root, name)
            try:
                stat = os.lstat(path)
            except OSError:
                continue
            if not S_ISREG(stat.st_mode) or stat.st_nlink < 2 or os.path.normpath(path) in keep:
                continue
            private = os.path.join(root, f".{name}.envmatrix-private")
            shutil.copy2(path, private, follow_symlinks=False)
            os.replace(private, path)
            copied += 1
    return copied


def _files_of(env: Path, names: set[str]) -> set[str]:
    """The installed files of the distributions ``names``, by their RECORDs (unreadable ones give none)."""
    files: set[str] = set()
    if not names:
        return files
    for folder in site_packages(env):
        for record in folder.glob("*.dist-info/RECORD"):
            if canonicalize_name(record.parent.name.split("-", 1)[0]) not in names:
                continue
            try:
                with open(record, newline="", encoding="utf-8") as handle:
                    files.update(os.path.normpath(folder / row[0]) for row in csv.reader(handle) if row)
            except (OSError, ValueError, csv.Error):
                continue
    return files
