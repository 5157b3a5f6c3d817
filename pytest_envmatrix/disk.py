"""What an environment costs on disk, for ``--envmatrix-list``.

A file hard-linked into an environment from uv's cache (link mode
``hardlink``, or ``clone`` where the filesystem cannot clone) takes its
blocks once however many environments link it: each inode is counted once
here, as ``du`` counts it, and the part in files that have links outside
the environment is told apart. Blocks shared by copy-on-write clones
(btrfs, XFS) do not show in a file's metadata: there the figure is what the
environment would take on its own, more than the disk really gives it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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
    return f"{size / 1e6:.1f} MB"
