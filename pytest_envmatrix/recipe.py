"""Everything that decides an environment's contents, and the cache key made of it.

A :class:`Recipe` is an :class:`~pytest_envmatrix.matrix.EnvSpec` made
concrete for this machine and this run: the interpreter found, pytest pinned,
the project under test, the installer and its index options. Its key is a
sha256 over a canonical JSON of all of that, so the on-disk name of an
environment never contains a user string.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from packaging.requirements import InvalidRequirement, Requirement

from .compiled import compiled_by, source_digest
from .installer import IndexOptions, Installer
from .interpreters import Interpreter
from .matrix import EnvSpec

# Bump when the layout of an environment or its completion mark changes.
FORMAT_VERSION = 2

_METADATA_FILES = ("pyproject.toml", "setup.py", "setup.cfg")

# Not part of what a directory requirement installs: version control, caches, environments.
_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".tox", ".nox", ".venv", ".pytest_cache", ".mypy_cache", ".ruff_cache"})


@dataclass(frozen=True)
class Project:
    """The project under test: installed editable into every environment, or, when it has
    compiled code, built in each environment against its packages (see compiled.py)."""

    root: str
    digest: str  # of its build-metadata files (and a compiled project's sources): a change means a new environment
    compiled: str | None = None  # why it counts as compiled, or None for an editable install


def detect_project(rootdir: Path, mode: str, build: str = "auto") -> Project | None:
    """``auto``: install the rootdir when it is a buildable project; ``none``: never.

    Any other value is a path to the project (relative to the rootdir).
    ``build`` (``envmatrix_project_build``) says whether it is built in each
    environment (``compiled``), installed editable (``editable``), or the
    first when it has compiled code (``auto``).
    """
    if mode == "none":
        return None
    root = rootdir if mode == "auto" else (rootdir / mode).resolve()
    if mode != "auto" and not _buildable(root):
        raise ValueError(f"envmatrix_project = {mode}: {root} has no pyproject.toml with a [project] table and no setup.py")
    if not _buildable(root):
        return None
    digest = hashlib.sha256()
    for name in _METADATA_FILES:
        path = root / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    if build == "auto":
        compiled = compiled_by(root)
    else:
        compiled = "envmatrix_project_build = compiled" if build == "compiled" else None
    if compiled:
        # each environment holds its own build of the sources: an edit to them is a new build
        digest.update(b"compiled\0" + source_digest(root).encode())
    return Project(str(root), digest.hexdigest(), compiled)


def _buildable(root: Path) -> bool:
    if (root / "setup.py").is_file():
        return True
    return _project_table(root) is not None


def _project_table(root: Path) -> dict | None:
    """The ``[project]`` table of the root's pyproject.toml, or None."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return None
    table = data.get("project")
    return table if isinstance(table, dict) else None


def project_dependencies(project: Project | None) -> list[str] | None:
    """The project's own requirements (``[project].dependencies``); None without a project.

    A project whose dependencies are computed at build time (``dynamic``,
    setup.py) declares none that can be read here: an empty list.
    """
    if project is None:
        return None
    table = _project_table(Path(project.root)) or {}
    dependencies = table.get("dependencies", [])
    return [d for d in dependencies if isinstance(d, str)] if isinstance(dependencies, list) else []


def _local_paths(requirements) -> list[tuple[str, Path]]:
    """The requirements that name a local file or directory (``name @ file:///...``), with their paths."""
    out = []
    for text in requirements:
        try:
            url = Requirement(text).url
        except InvalidRequirement:
            continue
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            continue
        out.append((text, Path(unquote(parts.path))))
    return out


def local_digest(path: Path) -> str:
    """What a local requirement installs, as a digest: the installer reads it afresh each build.

    A file (a wheel, an sdist): the sha256 of its bytes, so a file rebuilt at
    the same path is a new environment. A directory: the sha256 of every file's
    relative path, size and modification time (version control and cache
    folders left out). Reading every byte of a source tree on every run would
    cost more than the whole warm run; a changed file changes its mtime, and
    a directory requirement is installed as a built copy, so any source change,
    not only to the build metadata, must make a new environment. Something
    that is neither (missing, unreadable) is keyed as such: the installer then
    reports it.
    """
    digest = hashlib.sha256()
    try:
        if path.is_file():
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            return "file:" + digest.hexdigest()
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
                for name in sorted(files):
                    full = Path(root, name)
                    stat = full.lstat()
                    relative = full.relative_to(path).as_posix()
                    digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode("utf-8", "surrogateescape"))
            return "dir:" + digest.hexdigest()
    except OSError as exc:
        return f"unreadable: {exc}"
    return "missing"


@dataclass(frozen=True)
class Recipe:
    spec: EnvSpec
    interpreter: Interpreter
    project: Project | None
    installer: Installer
    index: IndexOptions

    @property
    def requirements(self) -> tuple[str, ...]:
        """The spec's requirements, plus pytest at the parent's version unless the matrix names it."""
        if "pytest" in self.spec.names():
            return self.spec.requirements
        return (*self.spec.requirements, f"pytest=={pytest.__version__}")

    @cached_property
    def key(self) -> str:
        material = {
            "format": FORMAT_VERSION,
            "interpreter": self.interpreter.identity,
            "requirements": sorted(self.requirements),
            "project": [self.project.root, self.project.digest] if self.project else None,
            "installer": self.installer.name,
            "link_mode": self.installer.effective_link_mode,
            "index": [self.index.index_url, list(self.index.find_links), self.index.no_index],
            "local": {req: local_digest(path) for req, path in _local_paths(self.requirements)},
            **self._source_material(),
        }
        blob = json.dumps(material, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def _source_material(self) -> dict:
        """Where packages come from and what their files are, beyond the rest; absent when unset, so older keys stay valid.

        Only the package indexes of packages this environment's requirements
        name count: the torch index of an ini file does not rebuild a numpy
        environment when it changes.
        """
        material = {}
        own = self.index.for_requirements(self.requirements) if self.installer.name == "uv" else ()
        if own:
            material["package_index"] = [index.key_material() for index in own]
        if self.index.torch_backend and self.installer.name == "uv":
            material["torch_backend"] = self.index.torch_backend
        if self.installer.makes_private:  # hard links replaced by copies, but for these packages
            material["shared_packages"] = sorted(self.installer.shared)
        return material

    def describe(self) -> dict:
        """What the completion mark records, for ``--envmatrix-list`` and for people."""
        return {
            "label": self.spec.label,
            "interpreter": self.interpreter.identity,
            "requirements": list(self.requirements),
            "project": self.project.root if self.project else None,
            "project_build": ("compiled" if self.project.compiled else "editable") if self.project else None,
            "installer": self.installer.name,
            "link_mode": self.installer.effective_link_mode,
            **self._source_material(),
        }
