"""xdist's scheduler for a matrix run: one environment's items are one work unit.

Imported only on an xdist controller (it imports xdist). See
:mod:`~pytest_envmatrix.distribution` for why.
"""

from __future__ import annotations

from collections.abc import Callable

from xdist.scheduler import LoadScopeScheduling


class EnvironmentScheduling(LoadScopeScheduling):
    """``load`` for the items outside the matrix (each its own unit), one unit per environment for the rest.

    ``groups`` gives node id → environment once every worker has collected
    (the workers write it before they report their collection).
    """

    def __init__(self, config, log, groups: Callable[[], dict[str, str]]) -> None:
        super().__init__(config, log)
        self._read_groups = groups
        self._groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:
            self._groups = self._read_groups()
        group = self._groups.get(nodeid)
        # a NUL cannot be in a node id: a group's name never equals an item's own scope
        return f"\0{group}" if group is not None else nodeid
