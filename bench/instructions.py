"""Instructions a process executes, counted by valgrind's callgrind: a figure the machine's load does not move.

Wall-clock and even CPU time change with what else the machine runs (other
processes evict the caches, hyperthreads share a core); the number of
instructions a deterministic piece of work executes does not. callgrind
counts those of the process it starts and of its threads, not of the
processes that one starts (no ``--trace-children``), so a parent pytest is
counted without its children, which run at full speed beside it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

_COLLECTED = re.compile(r"Collected : (\d+)")


def available() -> bool:
    return shutil.which("valgrind") is not None


def count(cmd: Sequence, env: dict, cwd: Path, timeout: float = 1800) -> int:
    """Instructions executed by ``cmd``'s process (its threads included, its child processes not)."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *map(str, cmd)],
        env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"valgrind {' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stderr[-2000:]}\n{proc.stdout[-2000:]}")
    return int(found.group(1))
