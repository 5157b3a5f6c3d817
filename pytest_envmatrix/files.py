"""Files written whole: whoever reads one sees the old file or the new one, never half of one.

The cache is shared by processes (xdist workers, parallel CI jobs on one
runner) and by the threads of one run, so the temporary name is unique to
both, and a file is renamed into place only once every byte was written.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_whole(path: Path, text: str, *, best_effort: bool = False) -> bool:
    """Write ``text`` to ``path`` under a temporary name beside it, then rename it into place.

    ``best_effort``: for records whose loss costs time, not results (a plan, a
    remembered failure, an index's answer): an ``OSError`` leaves nothing
    behind and returns False instead of raising.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")  # raises unless every byte was written
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if best_effort and isinstance(exc, OSError):
            return False
        raise
    return True
