"""Where one package comes from: its own index, leaving every other package's where it was.

torch is published on its own indexes (``https://download.pytorch.org/whl/cpu``,
``.../cu126``), which mirror some of PyPI. Adding such an index for the whole
install (``--extra-index-url``) lets *every* package come from either index,
whichever offers the higher version: a name registered on the other index by
someone else wins (dependency confusion). uv can assign one package to an
index that serves nothing else (an *explicit* index, named by a source); it
reads both from a ``pyproject.toml`` given with ``-r``, so this writes one
for the packages that have an index of their own. pip has no such thing.

An index is a URL (a PEP 503 "simple" index) or a folder of wheels (a
"flat" index, as ``--find-links`` takes). The assignment reaches a package
only where the environment's own requirements name it (its axis, ``deps``,
``envmatrix_deps``): uv applies a source to the requirements of the file
that declares it, and from there to the whole resolution.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

#: ``uv pip install --torch-backend`` values (uv adds CUDA and ROCm versions as they come out).
TORCH_BACKEND = re.compile(r"auto|cpu|xpu|cu\d{2,3}|rocm\d+(\.\d+)*")
DISTRIBUTION_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
EXAMPLE = "torch = https://download.pytorch.org/whl/cpu"


class PackageIndexError(ValueError):
    pass


@dataclass(frozen=True)
class PackageIndex:
    name: str  # canonical
    location: str  # a URL, or an absolute folder path

    @property
    def flat(self) -> bool:
        """A folder holds wheels side by side (``--find-links`` style); a URL serves a simple index."""
        return "://" not in self.location

    @property
    def url(self) -> str:
        return Path(self.location).as_uri() if self.flat else self.location

    def key_material(self) -> list[str]:
        return [self.name, self.location]


def parse_package_indexes(lines: Iterable[str], source: str, base: Path) -> dict[str, PackageIndex]:
    """``name = URL or folder`` lines (``name=URL`` on the command line); a relative folder is relative to ``base``.

    Blank lines and ``#`` comments are skipped; a package named twice, a
    line without ``=``, a bad name or an empty location is an error naming
    ``source`` and the line.
    """
    out: dict[str, PackageIndex] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, location = (part.strip() for part in line.partition("="))
        if not equals or not name or not location:
            raise PackageIndexError(f"{source}: {line!r} is not a package index: write name = URL or folder (e.g. {EXAMPLE})")
        if not DISTRIBUTION_NAME.match(name):
            raise PackageIndexError(f"{source}: {name!r} is not a valid distribution name")
        canonical = canonicalize_name(name)
        if canonical in out:
            raise PackageIndexError(f"{source}: package {name!r} is given twice")
        if "://" not in location:
            location = str((base / Path(location).expanduser()).resolve())
        out[canonical] = PackageIndex(canonical, location)
    return out


def requirement_name(text: str) -> str | None:
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def applicable(indexes: Sequence[PackageIndex], requirements: Iterable[str]) -> tuple[PackageIndex, ...]:
    """The indexes of the packages these requirements name, by name: what an environment's key depends on."""
    names = {requirement_name(text) for text in requirements}
    return tuple(sorted((index for index in indexes if index.name in names), key=lambda index: index.name))


def split_requirements(indexes: Sequence[PackageIndex], requirements: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the requirements that go in the sources file with their index, the others), in their order."""
    names = {index.name for index in indexes}
    pinned = [text for text in requirements if requirement_name(text) in names]
    return pinned, [text for text in requirements if requirement_name(text) not in names]


def sources_pyproject(indexes: Sequence[PackageIndex], requirements: Sequence[str]) -> str:
    """A ``pyproject.toml`` that declares ``requirements`` and assigns each named package its explicit index.

    JSON strings are TOML basic strings, so ``json.dumps`` quotes every value.
    """
    lines = [
        "# written by pytest-envmatrix: the packages with an index of their own (envmatrix_package_index)",
        "[project]",
        'name = "envmatrix-package-index"',
        'version = "0"',
        "dependencies = [" + ", ".join(json.dumps(text) for text in requirements) + "]",
        "",
        "[tool.uv.sources]",
    ]
    lines += [f"{json.dumps(index.name)} = {{ index = {json.dumps(_index_name(index))} }}" for index in indexes]
    for index in indexes:
        lines += [
            "",
            "[[tool.uv.index]]",
            f"name = {json.dumps(_index_name(index))}",
            f"url = {json.dumps(index.url)}",
            f"format = {json.dumps('flat' if index.flat else 'simple')}",
            "explicit = true",
        ]
    return "\n".join(lines) + "\n"


def _index_name(index: PackageIndex) -> str:
    return f"envmatrix-{index.name}"
