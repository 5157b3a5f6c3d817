"""Test modules the parent need not import: their items are known from the last run.

With markers, this process learns which tests run in which combinations by
collecting the test modules, and so imports them: a module that imports
numpy or torch at its top costs this process that import, on top of what
each environment's child pays for it, on the same CPUs. Yet on a warm run
nothing of a module is needed here but its items' names, keywords and
markers.

So when a module's items were all matrix items, the plan (see
:mod:`~pytest_envmatrix.plan`) keeps a record of it: each item's node id,
combination, location, keywords and markers, each test's ``envmatrix``
markers, and a digest of every file its collection read (the module, the
``conftest.py`` files, the ini file, and the modules under the rootdir that
collection imported: the project's own among them). The next run with the same command line
makes the module's items from the record, without importing it, as long as
every one of those files is unchanged and the markers still give the
recorded combinations (version selectors are resolved again).

What the digests cannot see (a marker that reads an environment variable, a
plugin that parametrizes differently) each child checks: it collects the
module anyway, and compares what it finds with the record (the tests the
module defines, their ``envmatrix`` markers, the node ids of its own
combination). A module that no longer collects as recorded runs none of its
tests in that child; they error, saying so, and the record is dropped, so the
next run imports the module again. A record can cost a run, never a result.

Items made from a record are :class:`~pytest_envmatrix.suite.SuiteItem` s
(the same as a suite-wide matrix's): ``-k``, ``-m``, ``--lf`` and
``--junitxml`` work on them as on any item. A plugin that reaches for what
only a real test function has (``item.function``, ``item.module``) gets the
real one: the module is then imported after all.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import _pytest.mark as _pytest_mark
import pytest

from ._child import _keywords, _plain_kwargs, marks_text, plain_marks
from .items import COMBINATION_ARG, COMBINATION_KEY, PROBLEM_KEY, SKIP_KEY, combination_of
from .matrix import Combination, MarkerError
from .plan import PlannedItem
from .suite import SuiteItem

# what only a real test function has: asking a recorded item for one of these imports its module
_REAL_ONLY = frozenset({"obj", "function", "module", "cls", "instance"})


@dataclass(frozen=True)
class ItemRecord:
    nodeid: str
    definition: str
    combination_id: str
    location: tuple
    keywords: tuple[str, ...]
    markers: tuple  # (name, plain kwargs), as -m sees them
    fixturenames: tuple[str, ...]

    def to_json(self) -> list:
        return [self.nodeid, self.definition, self.combination_id, list(self.location), list(self.keywords),
                [list(m) for m in self.markers], list(self.fixturenames)]

    @classmethod
    def from_json(cls, data: object) -> ItemRecord | None:
        if not isinstance(data, list) or len(data) != 7:
            return None
        nodeid, definition, combination_id, location, keywords, markers, fixturenames = data
        texts = (nodeid, definition, combination_id)
        if not all(isinstance(t, str) for t in texts) or not _location(location):
            return None
        if not _strings(keywords) or not _strings(fixturenames) or not isinstance(markers, list):
            return None
        if not all(isinstance(m, list) and len(m) == 2 and isinstance(m[0], str) and isinstance(m[1], dict) for m in markers):
            return None
        return cls(nodeid, definition, combination_id, tuple(location), tuple(keywords),
                   tuple((name, kwargs) for name, kwargs in markers), tuple(fixturenames))


@dataclass(frozen=True)
class ModuleRecord:
    """One test module as the last run collected it."""

    path: str  # relative to the rootdir, with forward slashes
    inputs: dict  # file path (relative to the rootdir where it is under it) → sha256 of its bytes
    marks: dict  # test definition → its envmatrix markers, closest first, as plain [args, kwargs] pairs
    items: tuple[ItemRecord, ...]

    def to_json(self) -> dict:
        return {"inputs": self.inputs, "marks": self.marks, "items": [item.to_json() for item in self.items]}

    @classmethod
    def from_json(cls, path: str, data: object) -> ModuleRecord | None:
        if not isinstance(data, dict):
            return None
        inputs, marks, items = data.get("inputs"), data.get("marks"), data.get("items")
        if not isinstance(inputs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in inputs.items()):
            return None
        if not isinstance(marks, dict) or not all(_marks(value) for value in marks.values()):
            return None
        if not isinstance(items, list) or not items:
            return None
        records = [ItemRecord.from_json(item) for item in items]
        if any(record is None for record in records):
            return None
        if any(record.definition not in marks for record in records):
            return None
        return cls(path, dict(inputs), dict(marks), tuple(records))

    def check(self, combination_ids: dict[str, str]) -> dict:
        """What a child that runs some of these tests compares with its own collection of the module.

        ``combination_ids``: for each test it runs, the id of its combination.
        """
        return {
            "marks": {definition: marks_text(marks) for definition, marks in self.marks.items()},
            "ids": sorted(item.nodeid for item in self.items if combination_ids.get(item.definition) == item.combination_id),
        }


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _location(value: object) -> bool:
    """``[path, line or None, headline]``, as ``Item.location`` gives it."""
    return (
        isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)
        and (value[1] is None or type(value[1]) is int) and isinstance(value[2], str)
    )


def _marks(value: object) -> bool:
    """A test's markers as :func:`plain_marks` gives them: ``[[args, kwargs], ...]``."""
    return isinstance(value, list) and all(
        isinstance(mark, list) and len(mark) == 2 and isinstance(mark[0], list) and isinstance(mark[1], dict)
        and all(isinstance(key, str) for key in mark[1])
        for mark in value
    )


class Digests:
    """sha256 of files, each read once per run."""

    def __init__(self, rootpath: Path) -> None:
        self.rootpath = rootpath
        self._known: dict[str, str | None] = {}

    def key(self, path: Path) -> str:
        try:
            return path.relative_to(self.rootpath).as_posix()
        except ValueError:
            return str(path)

    def of(self, key: str) -> str | None:
        if key not in self._known:
            path = Path(key) if Path(key).is_absolute() else self.rootpath / key
            try:
                self._known[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                self._known[key] = None
        return self._known[key]

    def unchanged(self, inputs: dict) -> bool:
        return all(self.of(key) == digest for key, digest in inputs.items())


class RecordedModule(pytest.File):
    """A test module made from its record: its items without its import."""

    record: ModuleRecord
    combinations: dict  # test definition → {combination id: Combination}

    def collect(self) -> Iterable[pytest.Item]:
        for record in self.record.items:
            planned = PlannedItem(record.nodeid, record.definition, record.combination_id,
                                  self.combinations[record.definition][record.combination_id].values(), None)
            item = RecordedItem.from_parent(
                self, name=record.nodeid.rsplit("::", 1)[-1], nodeid=record.nodeid, path=self.path,
                location=record.location, planned=planned,
            )
            item.extra_keyword_matches.update(record.keywords)
            item.own_markers.extend(pytest.Mark(name, (), kwargs, _ispytest=True) for name, kwargs in record.markers)
            item.fixturenames = list(record.fixturenames)
            item.originalname = record.definition.rsplit("::", 1)[-1]
            item.stash[COMBINATION_KEY] = self.combinations[record.definition][record.combination_id]
            yield item

    def real_items(self) -> dict[str, pytest.Item]:
        """The module's items as pytest collects them: a plugin asked for what only those have."""
        found = getattr(self, "_real", None)
        if found is None:
            module = pytest.Module.from_parent(self.parent, path=self.path)
            found = self._real = {item.nodeid: item for item in _walk(module)}
        return found


def _walk(collector: pytest.Collector):
    for node in collector.collect():
        if isinstance(node, pytest.Item):
            yield node
        elif isinstance(node, pytest.Collector):
            yield from _walk(node)


class RecordedItem(SuiteItem):
    """A matrix item of a module this process did not import; it runs in its environment only."""

    def __getattr__(self, name: str):
        if name not in _REAL_ONLY:
            raise AttributeError(name)
        if name == "function" and _asked_by_keyword_matcher():
            # pytest's -k asks every item for it, for the names set on the function: the record holds those
            return None
        real = self.parent.real_items().get(self.nodeid)
        if real is None:
            raise AttributeError(f"{name}: {self.nodeid} is no longer collected from {self.path}")
        return getattr(real, name)


def _asked_by_keyword_matcher() -> bool:
    """Whether the caller of ``__getattr__`` is pytest's -k matcher (any other caller gets the real function)."""
    matcher = getattr(getattr(_pytest_mark, "KeywordMatcher", None), "from_item", None)
    return matcher is not None and sys._getframe(2).f_code is getattr(matcher, "__code__", None)


class Records:
    """The last run's records, which of them this run uses, and what the next run gets."""

    def __init__(self, config: pytest.Config, saved: dict[str, ModuleRecord], enabled: bool) -> None:
        self.config = config
        self.digests = Digests(config.rootpath)
        self.saved = saved
        self.enabled = enabled
        self.used: dict[str, ModuleRecord] = {}  # modules this run made from their records
        self.dropped: set[str] = set()  # a child found the module collecting otherwise: never recorded again as it was
        self._collected: dict[str, list[pytest.Item]] = {}
        self._troubled: set[str] = set()  # modules whose collection failed or was skipped
        self.collection_done = False  # before: a usable record is one collection will use (the early children)

    # ---- using records

    def usable(self, path: str) -> ModuleRecord | None:
        """The record of ``path`` if its files are unchanged (before collection: the early children's checks)."""
        if not self.enabled:
            return None
        record = self.saved.get(path)
        if record is None or not self.digests.unchanged(record.inputs):
            return None
        return record

    def make_module(self, module_path: Path, parent: pytest.Collector, combinations_of: Callable) -> RecordedModule | None:
        """The module's collector made from its record, or None to collect it as usual.

        ``combinations_of(marks, where)``: a test's combinations (raises MarkerError).
        """
        path = self.digests.key(module_path)
        record = self.usable(path)
        if record is None:
            return None
        combinations: dict[str, dict[str, Combination]] = {}
        for definition, marks in record.marks.items():
            try:
                found = combinations_of([pytest.Mark("envmatrix", tuple(args), kwargs, _ispytest=True) for args, kwargs in marks], definition)
            except (MarkerError, pytest.Collector.CollectError, TypeError, ValueError):
                return None  # collected as usual, it says what is wrong
            if found is None:
                return None
            combinations[definition] = {combination.id: combination for combination in found}
        recorded_ids = {}
        for item in record.items:
            recorded_ids.setdefault(item.definition, set()).add(item.combination_id)
        if any(set(combinations[definition]) != ids for definition, ids in recorded_ids.items()):
            return None  # a version selector gives another version now, say
        module = RecordedModule.from_parent(parent, path=module_path)
        module.record, module.combinations = record, combinations
        self.used[path] = record
        return module

    def checks(self, items: Sequence[PlannedItem]) -> dict:
        """For a child's plan: each module it runs tests of that comes from a record, and what to compare."""
        by_module: dict[str, dict[str, str]] = {}
        for item in items:
            module = item.nodeid.split("::", 1)[0]
            if item.collect_as is None and (module in self.used or (not self.collection_done and self.usable(module))):
                by_module.setdefault(module, {})[item.definition] = item.combination_id
        return {module: (self.used.get(module) or self.saved[module]).check(ids) for module, ids in by_module.items()}

    def drop(self, modules: Iterable[str]) -> None:
        self.dropped.update(modules)

    # ---- making records

    def collectreport(self, report: pytest.CollectReport) -> None:
        if self.enabled and not report.passed and report.nodeid:
            self._troubled.add(report.nodeid.split("::", 1)[0])

    def collected(self, items: Sequence[pytest.Item]) -> None:
        """Every item collection made, before selection (-k, -m, --lf): the candidates for records."""
        self.collection_done = True
        self._collected.clear()
        if not self.enabled:
            return
        for item in items:
            self._collected.setdefault(item.nodeid.split("::", 1)[0], []).append(item)

    def to_save(self) -> dict[str, dict]:
        """The records for the next run: this run's modules, recorded afresh or carried over."""
        out = {}
        inputs = None
        for path, items in self._collected.items():
            if path in self.dropped or path in self._troubled:
                continue
            if path in self.used:
                out[path] = self.used[path].to_json()
                continue
            if inputs is None:
                inputs = self._shared_inputs()
            record = self._record(path, items, inputs)
            if record is not None:
                out[path] = record.to_json()
        return out

    def _record(self, path: str, items: list[pytest.Item], shared: dict) -> ModuleRecord | None:
        marks, records = {}, []
        for item in items:
            combination = combination_of(item)
            if type(item) is not pytest.Function or combination is None or PROBLEM_KEY in item.stash or SKIP_KEY in item.stash:
                return None
            definition = f"{item.parent.nodeid}::{item.originalname}"
            item_marks = plain_marks(item)
            if json.loads(json.dumps(item_marks)) != item_marks:
                return None  # a marker argument that is not plain data: it could not be rebuilt from the record
            marks.setdefault(definition, item_marks)
            records.append(ItemRecord(
                item.nodeid, definition, combination.id, tuple(item.location), tuple(sorted(_keywords(item))),
                tuple((mark.name, _plain_kwargs(mark.kwargs)) for mark in item.iter_markers() if mark.name != "parametrize"),
                tuple(name for name in item.fixturenames if name != COMBINATION_ARG),
            ))
        own = self.digests.of(path)
        if own is None or not records:
            return None
        inputs = {path: own, **{key: digest for key, digest in shared.items() if key not in self._collected}}
        return ModuleRecord(path, inputs, marks, tuple(records))

    def _shared_inputs(self) -> dict[str, str]:
        """What every module's collection may have read: conftest.py files, the ini file, the rootdir's modules imported."""
        files: set[Path] = set()
        for plugin in self.config.pluginmanager.get_plugins():
            file = getattr(plugin, "__file__", None)
            if file and file.endswith("conftest.py"):
                files.add(Path(file))
        if self.config.inipath is not None:
            files.add(Path(self.config.inipath))
        root = self.config.rootpath
        prefix = str(root).rstrip(os.sep) + os.sep
        for module in list(sys.modules.values()):
            file = getattr(module, "__file__", None)
            # strings, not Paths: a thousand modules are imported by now, and Path.parents is slow
            if not isinstance(file, str) or not file.endswith(".py") or not file.startswith(prefix):
                continue
            if f"{os.sep}site-packages{os.sep}" in file or f"{os.sep}dist-packages{os.sep}" in file:
                continue
            files.add(Path(file))
        for record in self.used.values():  # what the modules made from records imported when they were recorded
            files.update(Path(key) if Path(key).is_absolute() else root / key for key in record.inputs)
        out = {}
        for path in files:
            key = self.digests.key(path)
            digest = self.digests.of(key)
            if digest is not None:
                out[key] = digest
        return out


def load(data: object) -> dict[str, ModuleRecord]:
    """The records of a plan file's ``modules``; those not as :meth:`ModuleRecord.to_json` writes them are left out."""
    if not isinstance(data, dict):
        return {}
    out = {}
    for path, entry in data.items():
        record = ModuleRecord.from_json(path, entry) if isinstance(path, str) else None
        if record is not None:
            out[path] = record
    return out
