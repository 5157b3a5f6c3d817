"""The last run's plan: which cached environment ran which items.

A warm run's children need nothing from the parent's collection but the
list of items to run, and collection is most of what the parent costs. So
each run records, per environment, its cache key and its items; the next run
with the same command line starts those children as soon as its session
starts, while the parent is still collecting. Once collection ends, the
session compares: a child whose environment is unchanged and whose items
were all collected again is kept (tests added since run in a second child),
any other is killed and its results discarded. A stale or corrupt
plan therefore costs time, never correctness.

Plans live in the environment cache (``plans/``), one per project and
command line, so ``pytest --envmatrix`` and ``pytest --envmatrix -k slow``
each remember their own.

A plan also keeps a record of each test module whose items were all matrix
items, so that the next run can do without importing it (see
:mod:`~pytest_envmatrix.recorded`), and whether every item the run selected was a matrix item:
under ``-n N`` that tells the next run it can do without xdist's workers
(see :mod:`~pytest_envmatrix.distribution`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .files import write_whole

# Bump when the layout of a plan file changes: older ones are then ignored.
FORMAT_VERSION = 4

_HEX_KEY = re.compile("[0-9a-f]{64}")  # a Recipe.key: it names a directory and a lock file


@dataclass(frozen=True)
class PlannedItem:
    nodeid: str
    definition: str  # node id of the test function, without the parametrization
    combination_id: str
    values: dict
    # what the child collects, when it is not ``nodeid``: a unittest method runs unparametrized there
    collect_as: str | None = None


@dataclass(frozen=True)
class PlannedGroup:
    """One environment of a run: its cache key and the items its child ran."""

    label: str
    key: str
    items: tuple[PlannedItem, ...]

    def fits(self, key: str, items: list[PlannedItem]) -> bool:
        """Whether a child started for this group did only work the run wants, in the environment ``key``.

        True when every item it runs is one of ``items``, unchanged: the
        items it lacks (tests added since) get a child of their own after it.
        """
        if key != self.key:
            return False
        wanted = {item.nodeid: _comparable(item) for item in items}
        return all(wanted.get(item.nodeid) == _comparable(item) for item in self.items)


def _group(entry: object) -> PlannedGroup | None:
    """One group of a plan file, or None when it is not what :meth:`PlanStore.save` writes."""
    if not isinstance(entry, dict) or not isinstance(entry.get("items"), list):
        return None
    label, key = entry.get("label"), entry.get("key")
    if not isinstance(label, str) or not isinstance(key, str) or not _HEX_KEY.fullmatch(key):
        return None
    items = []
    for item in entry["items"]:
        if not isinstance(item, list) or len(item) != 5:
            return None
        nodeid, definition, combination_id, values, collect_as = item
        if not all(isinstance(text, str) for text in (nodeid, definition, combination_id)):
            return None
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            return None
        if collect_as is not None and not isinstance(collect_as, str):
            return None
        items.append(PlannedItem(nodeid, definition, combination_id, dict(values), collect_as))
    return PlannedGroup(label, key, tuple(items))


def _comparable(item: PlannedItem) -> tuple:
    return (item.nodeid, item.definition, item.combination_id, sorted(item.values.items()), item.collect_as)


class PlanStore:
    def __init__(self, cache_root: Path, config: pytest.Config) -> None:
        invocation = {
            "rootdir": str(config.rootpath),
            "cwd": str(config.invocation_params.dir),
            "args": list(config.invocation_params.args),
            "addopts": os.environ.get("PYTEST_ADDOPTS", ""),
            # what collects the tests: another pytest or plugin may make other items of the same files
            "python": sys.version,
            "pytest": pytest.__version__,
            "plugins": sorted({f"{dist.project_name}=={dist.version}" for _, dist in config.pluginmanager.list_plugin_distinfo()}),
        }
        digest = hashlib.sha256(json.dumps(invocation, sort_keys=True).encode()).hexdigest()[:16]
        self.path = cache_root / "plans" / f"{digest}.json"

    def _read(self) -> dict | None:
        if not hasattr(self, "_data"):
            self._data = self._read_file()  # once: the plan is read for the early start, the records and xdist
        return self._data

    def _read_file(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # RecursionError: valid JSON nested too deep to parse
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION or not isinstance(data.get("groups"), list):
            return None
        return data

    def load(self) -> list[PlannedGroup]:
        """The recorded plan; empty when there is none, it cannot be read, or anything in it is not as :meth:`save` writes it."""
        data = self._read()
        if data is None:
            return []
        groups = [_group(entry) for entry in data["groups"]]
        if any(group is None for group in groups):
            return []
        return groups

    def matrix_only(self) -> bool:
        """Whether the last run selected items and all of them were matrix items; False when unknown."""
        data = self._read()
        return data is not None and data.get("matrix_only") is True

    def modules(self) -> object:
        """The records of test modules, as :meth:`save` wrote them (:func:`.recorded.load` reads them)."""
        data = self._read()
        return None if data is None else data.get("modules")

    def save(self, groups: list[PlannedGroup], matrix_only: bool, modules: dict | None = None) -> None:
        """Record ``groups`` for the next run; a cache that cannot be written only loses the head start.

        ``matrix_only``: the run selected items, and every one was a matrix item.
        ``modules``: the records of test modules (see :mod:`~pytest_envmatrix.recorded`).
        """
        data = {
            "format": FORMAT_VERSION,
            "matrix_only": matrix_only,
            "modules": modules or {},
            "groups": [
                {
                    "label": group.label,
                    "key": group.key,
                    "items": [[i.nodeid, i.definition, i.combination_id, i.values, i.collect_as] for i in group.items],
                }
                for group in groups
            ],
        }
        write_whole(self.path, json.dumps(data), best_effort=True)
        self.__dict__.pop("_data", None)
