"""Builds that failed, remembered for a short time so that a red matrix stays fast to rerun.

A build that fails (the installer cannot resolve a pin, an index is
unreachable) would otherwise be tried again, at full cost, on every run. Its
failure is written to ``<cache>/failed/<key>.json``, keyed like the
environment: a change of anything the key covers (requirements, interpreter,
index options, installer, project metadata) is another key, with nothing
remembered. Within :data:`REMEMBER_SECONDS` the next run reports the old
failure at once; ``--envmatrix-rebuild`` tries again, and a build that works
forgets it.

A record is read back as untrusted input: one that is unreadable, of the
wrong shape, for another key, from the future or too old is ignored, and the
build is tried.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from .files import write_whole

FAILED = "failed"  # the folder in the cache root
REMEMBER_SECONDS = 600.0
_KEY_CHARS = 16  # as the environments' directory names


@dataclass(frozen=True)
class RememberedFailure:
    at: float  # time.time() of the failure
    reason: str  # what the failed build said

    def describe(self, now: float | None = None) -> str:
        """``failed N minutes ago: <reason>; --envmatrix-rebuild to retry``, the reason's details below."""
        age = max(0.0, (time.time() if now is None else now) - self.at)
        when = f"{age:.0f} s" if age < 60 else f"{age / 60:.0f} minute{'s' if age >= 90 else ''}"
        first, _, details = self.reason.partition("\n")
        text = f"failed {when} ago: {first}; --envmatrix-rebuild to retry"
        return text + ("\n" + details if details else "")


class FailureMemory:
    def __init__(self, root: Path, remember_seconds: float = REMEMBER_SECONDS) -> None:
        self.folder = Path(root) / FAILED
        self.remember_seconds = remember_seconds

    def _path(self, key: str) -> Path:
        return self.folder / f"{key[:_KEY_CHARS]}.json"

    def recall(self, key: str) -> RememberedFailure | None:
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        at, reason = data.get("at"), data.get("reason")
        if isinstance(at, bool) or not isinstance(at, (int, float)) or not isinstance(reason, str):
            return None
        if not 0 <= time.time() - at < self.remember_seconds:
            return None
        return RememberedFailure(float(at), reason)

    def remember(self, key: str, reason: str) -> None:
        """Best effort: a cache that cannot take the record only loses the speed-up."""
        path = self._path(key)
        write_whole(path, json.dumps({"key": key, "at": time.time(), "reason": reason}), best_effort=True)

    def forget(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except OSError:
            pass
