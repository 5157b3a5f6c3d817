"""The project under test when it has compiled code: recognised, keyed, and built once in each environment.

An editable install shares one build among all environments: setuptools
writes the extension modules into the source tree (``build_ext --inplace``)
and its objects into ``build/``, and meson-python keeps one build directory
that it rebuilds with whatever ``ninja`` it recorded. An extension compiled
against one combination's numpy headers would then be imported by every
combination. So a compiled project is instead built in each environment,
from a copy of its sources, without build isolation, against the packages
the environment holds (the combination's pins, then the project's build
requirements), and installed as a regular wheel.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

# Backends that build nothing but compiled projects (pybind11 and Cython projects mostly use these or setuptools).
COMPILED_BACKENDS = {
    "mesonpy": "meson-python",
    "scikit_build_core.build": "scikit-build-core",
    "maturin": "maturin",
    "py_build_cmake.build": "py-build-cmake",
    "enscons": "enscons",
}
_SETUPTOOLS_BACKENDS = ("setuptools.build_meta", "setuptools.build_meta:__legacy__")
# Words in setup.py, setup.cfg or pyproject.toml that declare extension modules to setuptools.
_EXTENSION_WORDS = re.compile(r"\bext_modules\b|\bext-modules\b|\bExtension\s*\(|\bcythonize\s*\(|\bPybind11Extension\b")
# The build requirements PEP 517 prescribes for a project without a [build-system] table.
_LEGACY_REQUIRES = ("setuptools>=40.8.0",)

# Not copied, not keyed: hidden files and folders, caches, environments, and the usual in-tree build output,
# whose objects (built against another environment's headers) setuptools would otherwise reuse.
_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".tox", ".nox", ".venv", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
_SKIPPED_TOP_DIRS = frozenset({"build", "dist"})
_COMPILED_SUFFIXES = tuple(sorted(set(importlib.machinery.EXTENSION_SUFFIXES) | {".so", ".pyd", ".dylib", ".o", ".obj"}))
# Test modules and conftest files are not build input: editing a test does not rebuild the project.
_TEST_FILES = ("test_*.py", "*_test.py", "conftest.py")

SOURCE_DIR = "envmatrix-project"  # in the environment, while it is being built; removed after


@dataclass(frozen=True)
class BuildSystem:
    backend: str
    requires: tuple[str, ...]
    backend_path: tuple[str, ...] = ()


def read_build_system(root: Path) -> BuildSystem:
    """The project's ``[build-system]``, with PEP 517's defaults where it has none."""
    data = _pyproject(root)
    table = data.get("build-system") if isinstance(data.get("build-system"), dict) else {}
    requires = table.get("requires", list(_LEGACY_REQUIRES))
    backend = table.get("build-backend", "setuptools.build_meta:__legacy__")
    path = table.get("backend-path", [])
    if not (isinstance(requires, list) and all(isinstance(r, str) for r in requires)):
        requires = []
    if not isinstance(backend, str):
        backend = ""
    if not (isinstance(path, list) and all(isinstance(p, str) for p in path)):
        path = []
    return BuildSystem(backend, tuple(requires), tuple(path))


def compiled_by(root: Path) -> str | None:
    """Why the project counts as compiled (for the docs and the mark), or None when it is pure Python.

    A backend that builds only compiled code is recognised by its name;
    setuptools by the words that declare extension modules in ``setup.py``,
    ``setup.cfg`` or ``pyproject.toml``. Other backends (flit, hatchling,
    pdm, poetry) are taken as pure Python.
    """
    backend = read_build_system(root).backend
    if backend in COMPILED_BACKENDS:
        return f"build backend {COMPILED_BACKENDS[backend]}"
    if backend not in _SETUPTOOLS_BACKENDS:
        return None
    for name in ("setup.py", "setup.cfg", "pyproject.toml"):
        try:
            text = (root / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if _EXTENSION_WORDS.search(text):
            return f"setuptools with extension modules (declared in {name})"
    return None


def _pyproject(root: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def build_requirements(requires: tuple[str, ...] | list[str], requirements: tuple[str, ...]) -> list[str]:
    """``requires`` without those that ``requirements`` (the environment's) name: the combination's pins win.

    A build-system range such as ``numpy>=2.0`` must not pull a combination's
    numpy 1.26.4 up: the point is to compile against the combination's numpy.
    """
    named = {_name(text) for text in requirements} - {None}
    return [text for text in requires if _name(text) not in named]


def _name(text: str) -> str | None:
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def _skipped(relative: Path, is_dir: bool, full: Path) -> bool:
    """Hidden files and folders are skipped too: tests and tools write there in the tree while they run
    (``.hypothesis/``, ``.coverage``), and a build that read them would change with every run."""
    name = relative.name
    if name.startswith("."):
        return True
    if is_dir:
        if name in _SKIPPED_DIRS or (len(relative.parts) == 1 and name in _SKIPPED_TOP_DIRS):
            return True
        # an environment or a cache (the envmatrix cache among them) inside the project
        return (full / "pyvenv.cfg").exists() or (full / "CACHEDIR.TAG").exists()
    return name.endswith(_COMPILED_SUFFIXES)


def source_files(root: Path):
    """The project's files that a build may read, as paths relative to ``root``, in a stable order."""
    for here, dirs, files in os.walk(root):
        base = Path(here)
        relative_base = base.relative_to(root)
        dirs[:] = sorted(d for d in dirs if not _skipped(relative_base / d, True, base / d))
        for name in sorted(files):
            if not _skipped(relative_base / name, False, base / name):
                yield relative_base / name


def source_digest(root: Path) -> str:
    """What a new build of the project would compile, as a digest (paths, sizes, modification times).

    Part of a compiled project's cache key, so that an edit to a source file
    means new environments with a new build at the next run. Test modules and
    conftest files are left out: editing a test rebuilds nothing.
    """
    digest = hashlib.sha256()
    try:
        for relative in source_files(root):
            if any(fnmatch(relative.name, pattern) for pattern in _TEST_FILES):
                continue
            info = (root / relative).lstat()
            digest.update(f"{relative.as_posix()}\0{info.st_size}\0{info.st_mtime_ns}\0".encode("utf-8", "surrogateescape"))
    except OSError as exc:
        return f"unreadable: {exc}"
    return digest.hexdigest()


def copy_sources(root: Path, dest: Path) -> Path:
    """A private copy of the project to build from: the user's tree gets no build output,
    and no environment reuses another's objects. Modification times are the copy's own,
    so no installer takes a build of an older copy from its cache."""
    dest.mkdir(parents=True)
    for relative in source_files(root):
        source, target = root / relative, dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        elif stat.S_ISREG(source.stat().st_mode):
            shutil.copyfile(source, target)
            shutil.copymode(source, target)
    return dest


# Run by the environment's interpreter, in the copy of the project: the requirements the backend
# asks for on top of [build-system].requires (meson-python asks for ninja when none is on PATH,
# older setuptools for wheel). Prints them as a JSON list.
DYNAMIC_REQUIRES_SCRIPT = """
import importlib, json, sys
backend, paths = sys.argv[1], json.loads(sys.argv[2])
sys.path[:0] = paths
module, _, attr = backend.partition(":")
hooks = importlib.import_module(module)
for part in attr.split(".") if attr else ():
    hooks = getattr(hooks, part)
get = getattr(hooks, "get_requires_for_build_wheel", None)
print("ENVMATRIX-REQUIRES " + json.dumps(list(get(None)) if get else []))
"""


def parse_dynamic_requires(output: str) -> list[str] | None:
    """The requirements :data:`DYNAMIC_REQUIRES_SCRIPT` printed, or None if it printed none that parse."""
    for line in reversed(output.splitlines()):
        if line.startswith("ENVMATRIX-REQUIRES "):
            try:
                found = json.loads(line[len("ENVMATRIX-REQUIRES "):])
            except ValueError:
                return None
            if isinstance(found, list) and all(isinstance(r, str) and _name(r) for r in found):
                return found
            return None
    return None


def source_tree_shadowing(
    root: Path, invocation_dir: Path, cwd_on_sys_path: bool, import_mode: str, pythonpath: list[Path]
) -> str | None:
    """Why the children will import the project's package from its source tree, or None.

    A compiled project's source tree holds no compiled modules (the build
    happens in a copy), so a flat layout whose top folder is on ``sys.path``
    ahead of the environment's ``site-packages`` imports a package that
    cannot work: ``ModuleNotFoundError`` for the extension, or a "circular
    import" of it. The usual ways the top folder gets there are named; a
    ``src/`` layout has no package at the top and is never named.
    """
    packages = sorted(
        p.name for p in _entries(root)
        if p.is_dir() and (p / "__init__.py").is_file() and p.name not in ("tests", "test")
    )
    name = _pyproject(root).get("project", {}).get("name")
    own = canonicalize_name(name).replace("-", "_") if isinstance(name, str) else None
    if own in packages:
        packages = [own]  # the project's own package, not a benchmarks/ or docs/ folder beside it
    if not packages:
        return None
    where = f"the package {packages[0]} is at the top of {root}"
    root = root.resolve()
    if cwd_on_sys_path and invocation_dir.resolve() == root:
        return f"{where}, and python -m pytest puts the current directory on sys.path"
    if any(path.resolve() == root for path in pythonpath):
        return f"{where}, and the ini option pythonpath puts it on sys.path"
    if import_mode != "prepend":
        return None
    if (root / "conftest.py").is_file():
        return f"{where}, and pytest puts the folder of its conftest.py on sys.path (--import-mode=prepend)"
    for package in packages:
        for here, dirs, files in os.walk(root / package):
            dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS]
            if "__init__.py" in files and any(fnmatch(f, pattern) for f in files for pattern in _TEST_FILES[:2]):
                return (
                    f"{where}, and its test folder {Path(here).relative_to(root)} is a package: pytest puts the top "
                    "of the package on sys.path (--import-mode=prepend)"
                )
    return None


def _entries(root: Path) -> list[Path]:
    try:
        return list(root.iterdir())
    except OSError:
        return []
