"""The suite-wide matrix: every test in every combination, collected inside each environment.

With ``--envmatrix-axis`` (or the ``envmatrix_axes`` ini option) the parent
never imports a test module. As pytest-xdist's controller does with its
workers, it leaves collection to the children: one per combination, each
collecting the suite with the combination's own packages and describing what
it found (node ids, locations, keywords, markers). The parent makes a
:class:`SuiteItem` of each description, so ``-k``, ``-m``, ``--lf``, ``-x``
and ``--junitxml`` work on them as on any item, and tells each child which of
its items were selected; the child then runs those. A module that collects
differently in two environments (a parametrization that depends on the
version, a module-level skip, an import error) is simply different items, or
a different skip or error, in each.

A test's own ``envmatrix`` marker narrows the suite-wide matrix for that
test: for each axis it names, the test runs only in the environments whose
value it lists. An axis or a value outside the suite-wide matrix is an error
on that test, naming it (such a test would need environments the suite does
not build).

This module turns descriptions into items and decides which exist; the
session builds the environments and runs the children.
"""

from __future__ import annotations

from collections.abc import Sequence
import pytest

from .items import COMBINATION_KEY
from .matrix import PYTHON_AXIS, Combination, Matrix, MarkerError, value_key, build_matrix
from .plan import PlannedItem


class SuiteItem(pytest.Item):
    """A test that a child collected in its environment: it runs there, never in this process."""

    def __init__(self, *, location: Sequence, planned: PlannedItem, **kwargs) -> None:
        super().__init__(**kwargs)
        self._where = (self.session.config.rootpath / location[0], location[1], location[2])
        self.planned = planned

    def runtest(self) -> None:
        raise RuntimeError("envmatrix: a suite-wide matrix item runs in its environment only")

    def reportinfo(self):
        return self._where


def make_items(
    session: pytest.Session,
    combination: Combination,
    described: Sequence[dict],
    suite: Matrix | None,
) -> tuple[list[SuiteItem], dict[str, str]]:
    """The items one child collected, and the errors of those that cannot run (node id → message).

    ``described``: the child's description of each item (see ``_child.py``).
    ``suite``: the matrix whose axes a test's own marker narrows; None when
    markers have no say (the upgrade check runs every test in both its
    environments).
    """
    items, errors = [], {}
    for description in described:
        nodeid = description["nodeid"]
        try:
            wanted = suite is None or _marker_allows(description["envmatrix"], combination, suite, nodeid)
        except MarkerError as exc:
            wanted, errors[nodeid] = True, str(exc)
        if not wanted:
            continue
        planned = PlannedItem(
            nodeid,
            description["definition"] or "",
            combination.id,
            combination.values(),
            description["collect_as"],
        )
        item = _item(session, nodeid, description["location"], planned, description["keywords"], description["markers"])
        if nodeid not in errors:
            item.stash[COMBINATION_KEY] = combination
        items.append(item)
    return items, errors


def problem_item(session: pytest.Session, combination: Combination, where: str = "") -> SuiteItem:
    """An item that stands for a combination (or one of its modules) that could not be collected."""
    nodeid = f"{where}[{combination.id}]" if where else f"envmatrix[{combination.id}]"
    path = where.split("::", 1)[0] if where else "."
    planned = PlannedItem(nodeid, "", combination.id, combination.values(), None)
    # the domain is what the terminal shows after the file: the combination, or the whole id
    domain = f"[{combination.id}]" if where else nodeid
    return _item(session, nodeid, [path, None, domain], planned, ["envmatrix", combination.id], [])


def skip_report(report: pytest.CollectReport, combination: Combination) -> pytest.CollectReport:
    """A child's skipped collection (a module-level skip) as the parent shows it: named by its combination."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        longrepr = (longrepr[0], longrepr[1], f"{longrepr[2]} (in {combination.id})")
    return pytest.CollectReport(f"{report.nodeid}[{combination.id}]", "skipped", longrepr, [])


def in_order(per_combination: Sequence[Sequence[SuiteItem]]) -> list[SuiteItem]:
    """All combinations' items in one list: in source order, each test's combinations together.

    Files come in the order collection met them, tests within a file by
    their line (a test that only one combination collected takes its place
    among the others), and a test's combinations follow each other.
    """
    files: dict[str, int] = {}
    tests: dict[str, int] = {}
    keyed = []
    for index, items in enumerate(per_combination):
        for item in items:
            file = item.nodeid.split("::", 1)[0]
            line = item.reportinfo()[1]
            test = tests.setdefault(_test_of(item), len(tests))
            key = (files.setdefault(file, len(files)), -1 if line is None else line, test, index)
            keyed.append((key, item))
    return [item for _, item in sorted(keyed, key=lambda pair: pair[0])]


def _test_of(item: SuiteItem) -> str:
    """The item's node id without its combination: the same test in every combination."""
    combination = item.planned.combination_id
    return item.nodeid.replace(f"[{combination}]", "").replace(f"[{combination}-", "[")


def _item(session, nodeid, location, planned, keywords, markers) -> SuiteItem:
    name = nodeid.rsplit("::", 1)[-1]
    path = session.config.rootpath / location[0]
    item = SuiteItem.from_parent(session, name=name, nodeid=nodeid, path=path, location=location, planned=planned)
    item.extra_keyword_matches.update(keywords)
    # built directly: a marker registered by a conftest that only the child imports must not warn here
    item.own_markers.extend(pytest.Mark(marker, (), kwargs, _ispytest=True) for marker, kwargs in markers)
    return item


def _marker_allows(marks: Sequence, combination: Combination, suite: Matrix, where: str) -> bool:
    """Whether a test with these envmatrix markers runs in ``combination`` of the suite-wide matrix."""
    if not marks:
        return True
    matrix = build_matrix([(tuple(args), kwargs) for args, kwargs in marks], where=where)
    if matrix.deps:
        raise MarkerError(f"{where}: envmatrix deps=[...] in a marker cannot apply in a suite-wide run; use envmatrix_deps")
    values = {pin.canonical: pin.value for pin in combination.pins}
    selectors = {pin.canonical: pin.selector for pin in combination.pins if pin.selector}
    for canonical, axis in matrix.axes.items():
        if canonical in suite.forced:
            continue
        if canonical not in suite.axes:
            raise MarkerError(
                f"{where}: envmatrix axis {axis.name!r} is not in the suite-wide matrix "
                f"(axes: {', '.join(a.name for a in suite.axes.values()) or 'none'}); add it with --envmatrix-axis or envmatrix_axes"
            )
        offered = {value_key(value) for value in suite.axes[canonical].values}
        missing = [value for value in axis.values if value_key(value) not in offered]
        if missing:
            raise MarkerError(
                f"{where}: envmatrix {axis.name}={missing[0]!r} is not among the suite-wide matrix's values "
                f"({', '.join(suite.axes[canonical].values)})"
            )
        # a marker may name a value by the selector it came from ('latest') or by its version
        if not {value_key(values[canonical]), value_key(selectors.get(canonical, values[canonical]))} & {value_key(value) for value in axis.values}:
            return False
    if matrix.python is not None:
        if suite.python is None:
            raise MarkerError(f"{where}: envmatrix python=[...] in a marker needs a python axis in the suite-wide matrix")
        if combination.python not in matrix.python:
            return False
    current = {k: {value_key(v), value_key(selectors.get(k, v))} for k, v in values.items()}
    if combination.python:
        current[PYTHON_AXIS] = {combination.python}
    return not any(all(v in current.get(k, ()) for k, v in rule.items()) for rule in matrix.exclude)

