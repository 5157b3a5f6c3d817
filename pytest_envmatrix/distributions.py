"""The distributions an environment actually holds, read from the environment itself.

A combination asks for ``numpy>=2,<2.2``; a report must say which numpy the
tests ran against. That is read once, when the environment is built, from
the ``*.dist-info`` folders of its site-packages (what the installer wrote,
not what was asked for), and kept beside the environment in
``envmatrix-installed.json``. The file is read back as untrusted input: a
record of the wrong shape is ignored, and the folders are read again.
"""

from __future__ import annotations

import json
from pathlib import Path

from packaging.utils import InvalidName, canonicalize_name

from .files import write_whole
from .integrity import site_packages

RECORD = "envmatrix-installed.json"
_MAX_HEADER_BYTES = 64 * 1024  # a METADATA header is a few hundred bytes; its body may be a whole README
_MAX_RECORD_BYTES = 4 * 1024 * 1024
_MAX_VERSION_CHARS = 200


def scan(env: Path) -> dict[str, str]:
    """Canonical distribution name → installed version, for every distribution in ``env``'s site-packages."""
    found: dict[str, str] = {}
    for folder in site_packages(env):
        try:
            infos = sorted(folder.glob("*.dist-info"))
        except OSError:
            continue
        for info in infos:
            named = _name_and_version(info)
            if named is not None:
                found.setdefault(*named)
    return dict(sorted(found.items()))


def record(env: Path) -> dict[str, str]:
    """Read what ``env`` holds and keep it beside it; a cache that cannot be written only loses the record."""
    installed = scan(env)
    write_whole(env / RECORD, json.dumps(installed, indent=1), best_effort=True)
    return installed


def installed(env: Path) -> dict[str, str]:
    """What ``env`` holds: its record when that is sound, else read from its folders again."""
    recorded = _load(env / RECORD)
    return recorded if recorded is not None else scan(env)


def _load(path: Path) -> dict[str, str] | None:
    try:
        if path.is_symlink() or path.stat().st_size > _MAX_RECORD_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    for name, version in data.items():
        if not (_is_canonical(name) and _is_version(version)):
            return None
    return dict(data)


def _is_canonical(name: object) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        return canonicalize_name(name, validate=True) == name
    except InvalidName:
        return False


def _is_version(version: object) -> bool:
    return isinstance(version, str) and 0 < len(version) <= _MAX_VERSION_CHARS and version.isprintable() and not version.isspace()


def _name_and_version(info: Path) -> tuple[str, str] | None:
    """From the ``Name`` and ``Version`` of its METADATA, else from the folder's own name."""
    name = version = None
    try:
        with open(info / "METADATA", "rb") as handle:
            header = handle.read(_MAX_HEADER_BYTES).decode("utf-8", "replace")
        for line in header.splitlines():
            if not line.strip():
                break
            field, _, value = line.partition(":")
            if field.lower() == "name" and name is None:
                name = value.strip()
            elif field.lower() == "version" and version is None:
                version = value.strip()
    except OSError:
        pass
    if not (name and version):
        stem = info.name[: -len(".dist-info")]
        name, _, version = stem.partition("-")
    try:
        canonical = canonicalize_name(name, validate=True)
    except InvalidName:
        return None
    return (canonical, version) if _is_version(version) else None
