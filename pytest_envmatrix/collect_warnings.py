"""The warnings raised while the children collected, shown by the parent as its own collection's.

Plain pytest shows what its collection raised: a module's own
``DeprecationWarning`` at import, a test class it cannot collect, a
deprecated ``parametrize`` argument. Where the parent does not import a test
module (a suite-wide matrix, where it collects nothing; a module it made from
its record of the last run), only the children saw those warnings, and they
send them (``warning`` events marked ``collect``). The parent shows each once:
several combinations raise the same warning alike, and a module the parent
did import raised it here already. "Alike" ignores which environment a file
is in: numpy's own warning is the same from each environment's copy of numpy.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path

Key = tuple[str, str, str, str, int]


def _key(message: warnings.WarningMessage, env_path: Path | None = None) -> Key:
    filename = str(message.filename)
    if env_path is not None:
        prefix = str(env_path) + os.sep
        if filename.startswith(prefix):
            filename = "<environment>" + os.sep + filename[len(prefix):]
    category = message.category
    return (category.__module__, category.__qualname__, str(message.message), filename, message.lineno or 0)


class CollectionWarnings:
    """The children's collection warnings not shown yet, and the keys of those pytest has shown."""

    def __init__(self) -> None:
        self._shown: set[Key] = set()
        self._pending: list[tuple[Key, warnings.WarningMessage]] = []
        self._lock = threading.Lock()  # children are read in worker threads

    def shown(self, message: warnings.WarningMessage) -> None:
        """pytest showed ``message`` as a collection warning (this process's own, or one raised again here)."""
        with self._lock:
            self._shown.add(_key(message))

    def add(self, messages: Iterable[warnings.WarningMessage], env_path: Path) -> None:
        """What a child in the environment at ``env_path`` raised while it collected."""
        with self._lock:
            self._pending.extend((_key(message, env_path), message) for message in messages)

    def take(self) -> list[warnings.WarningMessage]:
        """The warnings to show: each one not shown yet, once."""
        with self._lock:
            taken = []
            for key, message in self._pending:
                if key not in self._shown:
                    self._shown.add(key)
                    taken.append(message)
            self._pending.clear()
            return taken
