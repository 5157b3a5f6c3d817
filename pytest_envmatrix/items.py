"""Which combination an item runs in, and the marked items ``pytest_generate_tests`` never sees.

pytest parametrizes test functions only. A ``unittest.TestCase`` method is
collected as a ``TestCaseFunction`` that no ``pytest_generate_tests`` call
reaches, and a plugin's item (a doctest, a YAML case) has no function at all:
a marker on either would silently mean "run once, in the parent". So, as each
collector's report comes in, every marked unittest method is replaced by one
copy per combination, named and selectable like a parametrized function
(``test_x[numpy-2.1.3]``) and carrying its combination in the item's stash;
the child runs the plain method and reports it under the copy's node id. Any
other marked item without a combination is a collection error that names it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from _pytest.unittest import TestCaseFunction

from .matrix import Combination, MarkerError

COMBINATION_ARG = "envmatrix_combination"
COMBINATION_KEY = pytest.StashKey[Combination]()
PROBLEM_KEY = pytest.StashKey[str]()  # why an item cannot run at all: it errors with this message
SKIP_KEY = pytest.StashKey[str]()  # why an item is skipped without running (a python this machine lacks)
MARKER = "envmatrix"


def combination_of(item: pytest.Item) -> Combination | None:
    """The combination ``item`` stands for, or None for an item that runs in this process."""
    combination = item.stash.get(COMBINATION_KEY, None)
    if combination is not None:
        return combination
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    value = callspec.params.get(COMBINATION_ARG)
    return value if isinstance(value, Combination) else None


def collected_as(item: pytest.Item) -> str | None:
    """The node id the child collects for ``item``, where it is not the item's own: a unittest method's."""
    if COMBINATION_KEY in item.stash:
        return f"{item.parent.nodeid}::{item.originalname}"
    return None


class MatrixTestCaseFunction(TestCaseFunction):
    """A unittest method in one combination. It never runs in this process: the child runs the plain method."""

    def _getinstance(self):
        return self.parent.obj(self.originalname)


def expand_items(
    result: Sequence[object],
    combinations_of: Callable[[pytest.Item], list[Combination]],
    expands: bool,
) -> list[object]:
    """One collector's result with its marked unittest methods expanded (when ``expands``).

    ``combinations_of(item)`` gives a marked item's combinations (and raises
    :class:`MarkerError` for a bad marker). Test functions were parametrized
    already; any other marked item raises :class:`MarkerError`, in both modes,
    like a marker with a bad value.
    """
    out: list[object] = []
    for node in result:
        if not isinstance(node, pytest.Item) or _handled_elsewhere(node, expands):
            out.append(node)
            continue
        if node.get_closest_marker(MARKER) is None:
            out.append(node)
            continue
        if not isinstance(node, TestCaseFunction):
            raise MarkerError(
                f"{node.nodeid}: envmatrix: this is {_kind(node)}, so it cannot run in a combination's "
                f"environment (remove the marker from it)"
            )
        combinations = combinations_of(node)
        if not expands:
            out.append(node)
            continue
        out.extend(_copy(node, combination) for combination in combinations)
    return out


def _handled_elsewhere(item: pytest.Item, expands: bool) -> bool:
    """Test functions go through ``pytest_generate_tests``, which validates and expands their markers.

    A plugin's subclass of ``Function`` (pytest-asyncio's, say) is made from
    a parametrized function and keeps its combination; one that kept none is
    known only when the matrix expands.
    """
    if type(item) is pytest.Function or (expands and combination_of(item) is not None):
        return True
    if isinstance(item, TestCaseFunction) or expands:
        return False
    return isinstance(item, pytest.Function)


def _kind(item: pytest.Item) -> str:
    if isinstance(item, pytest.Function):
        return f"a {type(item).__name__} that pytest did not parametrize"
    return f"a {type(item).__name__}, not a test function or unittest method"


def _copy(item: TestCaseFunction, combination: Combination) -> MatrixTestCaseFunction:
    method = getattr(item.parent.obj, item.name)
    copy = MatrixTestCaseFunction.from_parent(
        item.parent,
        name=f"{item.name}[{combination.id}]",
        callobj=method,
        keywords={combination.id: True},  # as pytest gives a parametrized function its id
    )
    # the node id above is made from the name; the method is looked up by this one
    copy.originalname = item.name
    node_id = getattr(copy, "_id", None)
    if node_id is not None and hasattr(type(node_id), "parse"):
        # pytest 9.2 keeps node ids structured (path, names, params) and compares them so (--lf):
        # this one must equal the id read back from its string, ``[...]`` parsed as params
        copy._id = type(node_id).parse(str(node_id))
    copy.stash[COMBINATION_KEY] = combination
    return copy


def unexpanded_reason(item: pytest.Item) -> str | None:
    """Why a marked item that got no combination did not run; None for an unmarked item.

    A marker added after collection (by a ``pytest_collection_modifyitems``
    hook) comes too late for any item; a marked item of a kind that cannot
    run in a combination would have failed collection, had it been marked then.
    """
    problem = item.stash.get(PROBLEM_KEY, None)
    if problem is not None:
        return problem
    if item.get_closest_marker(MARKER) is None:
        return None
    if type(item) is pytest.Function or isinstance(item, TestCaseFunction):
        why = "got its envmatrix marker after collection (from a pytest_collection_modifyitems hook?), too late to expand it"
    else:
        why = f"is {_kind(item)}, so it cannot run in a combination's environment"
    return f"envmatrix: {item.nodeid} {why}; it was not run (remove the marker from it)"
