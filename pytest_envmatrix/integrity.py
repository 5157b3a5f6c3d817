"""Whether an environment's installed files are the ones their wheels shipped.

Every installed distribution lists its files with their sha256 in
``*.dist-info/RECORD``. A file that differs was changed after it was
installed: by a test that wrote it in place, or, with uv's hard links, by a
write in another environment sharing its cache entry. uv trusts its cache
without checking it (``--reinstall`` and ``--refresh`` take the same entry
again), so ``--envmatrix-rebuild`` checks what it installed and reinstalls
the distributions that differ without the cache.

Also here: what an environment found at another path than the one it was
built at needs to be used there (:func:`relocate`).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import re
from pathlib import Path


def site_packages(env: Path) -> list[Path]:
    return [*env.glob("lib/python*/site-packages"), *env.glob("lib64/python*/site-packages"), *env.glob("Lib/site-packages")]


def changed_distributions(env: Path) -> dict[str, list[str]]:
    """Distribution name → its files whose content is not what RECORD says (missing files included)."""
    changed: dict[str, list[str]] = {}
    for folder in site_packages(env):
        for record in sorted(folder.glob("*.dist-info/RECORD")):
            bad = _changed_files(folder, record)
            if bad:
                changed[record.parent.name.split("-", 1)[0]] = bad
    return changed


def _changed_files(folder: Path, record: Path) -> list[str]:
    try:
        with open(record, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, ValueError, csv.Error):
        return [str(record)]
    bad = []
    for row in rows:
        if len(row) < 2 or not row[1].startswith("sha256="):
            continue  # RECORD itself, bytecode: listed without a hash
        path = Path(os.path.normpath(folder / row[0]))
        expected = row[1][len("sha256="):]
        if _digest(path) != expected:
            bad.append(str(path))
    return bad


def _digest(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def relocate(env: Path, old: str) -> bool:
    """Make an environment copied or moved from ``old`` (a restored CI cache) name its new place; True if it does now.

    A virtualenv writes its own absolute path into its scripts (the shebang
    of ``bin/pytest``, the activation scripts) and, with virtualenv, into
    ``pyvenv.cfg``; the interpreter itself finds its environment from where
    it runs. So those files, and links in ``bin/``, are rewritten. A file
    that names the old place but is not text (a compiled launcher) cannot be
    rewritten safely: False, and the caller rebuilds the environment.
    """
    old_bytes, new_bytes = os.fsencode(old), os.fsencode(str(env))
    pattern = re.compile(re.escape(old_bytes) + rb"(?=[/\\\s'\":;]|$)", re.MULTILINE)
    for folder in ("bin", "Scripts"):
        scripts = env / folder
        if scripts.is_dir() and not scripts.is_symlink():
            for path in sorted(scripts.iterdir()):
                if not _rewrite(path, pattern, new_bytes):
                    return False
    return _rewrite(env / "pyvenv.cfg", pattern, new_bytes)


def _rewrite(path: Path, pattern: re.Pattern, new: bytes) -> bool:
    if path.is_symlink():
        target = os.fsencode(os.readlink(path))
        if pattern.search(target):
            tmp = path.with_name(f".{path.name}.{os.getpid()}.relocating")
            os.symlink(os.fsdecode(pattern.sub(new, target)), tmp)
            os.replace(tmp, path)
        return True
    if not path.is_file():
        return True
    data = path.read_bytes()
    if not pattern.search(data):
        return True
    if b"\0" in data:
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.relocating")
    tmp.write_bytes(pattern.sub(new, data))
    os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)
    return True
