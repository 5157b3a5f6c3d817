"""How a matrix run meets pytest-xdist's ``-n``.

A marker-declared matrix keeps xdist's workers: each collects the suite and
runs the items xdist sends it, and an item that is not in the matrix runs in
a worker as usual. The cost of a matrix item is its child: a child starts
(and imports the test modules in its environment) once per batch of items it
gets. So, with ``-n``'s default ``load`` distribution, one environment's
items are one work unit of :class:`EnvironmentGroups`' scheduler: they go to
one worker, which runs them in one child. xdist's own ``loadgroup`` did this
through node ids (``test_f[...]@group``) until pytest 9.2 made node ids
read-only; the scheduler here needs no change to any id, so ids are the same
with and without ``-n``. The controller never collects, so it learns which
environment each node id needs from the workers: each writes that map to a
file in a folder the controller names (workers run on this machine with
``-n``), before it reports its collection. Without the map (workers on
other machines), every item is a unit of its own: correct, with more children.

A suite-wide matrix runs every item in a child, and only a child of each
environment can collect the suite. xdist workers would each have to collect
it (workers × environments children, only to list the items) and would then
share nothing but the waiting. So there ``-n N`` means N children at once:
xdist is switched off before it starts a worker (this runs before xdist's
own ``pytest_configure``, which registers the controller) and N becomes the
number of jobs, unless ``--envmatrix-jobs`` or ``envmatrix_jobs`` sets it.

A marker-declared matrix whose items are all in the matrix is the same case
in disguise: the workers would only collect the suite again (importing the
test modules twice more), pass every report through the controller, and
start the children after collecting, where one process can start them from
the last run's plan while it collects. Which items a run selects is known
only after collection, too late to decline xdist; so the last run with the
same command line decides (:meth:`~pytest_envmatrix.plan.PlanStore.matrix_only`,
which the controller records from the workers' maps under ``-n``). A test
outside the matrix that appeared since then runs in this process, as without
``-n``: the guess can cost speed, never a result, and the next run goes back
to the workers.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from .plan import PlanStore

GROUPS_INPUT = "envmatrix_groups_dir"  # the workerinput key naming the controller's folder
NOTE_KEY = pytest.StashKey[str]()  # what -n does in this run, for the header


def distributes(config: pytest.Config) -> bool:
    """Whether xdist will start workers (its own test: a distribution mode and somewhere to run)."""
    if not config.pluginmanager.hasplugin("xdist"):
        return False
    return config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def suite_jobs(config: pytest.Config, jobs: int) -> int:
    """With a suite-wide matrix: switch xdist off and return the jobs ``-n`` asks for (``jobs`` if not distributed).

    ``jobs`` is the resolved ``--envmatrix-jobs``; an explicit one wins over ``-n``.
    """
    if is_worker(config) or not distributes(config):
        return jobs
    return _without_workers(config, jobs, "with a suite-wide matrix: no xdist workers; up to {jobs} environments' children collect and run at once")


def matrix_only_jobs(config: pytest.Config, jobs: int, plans: PlanStore) -> int | None:
    """With markers under ``-n N`` (``load``): when the last such run selected only matrix items, switch xdist off
    and return the jobs; else None, and xdist's workers run as usual.

    Only the ``load`` distribution: ``each`` runs every test on every worker,
    and the other modes are the user's choice of grouping.
    """
    if is_worker(config) or not distributes(config) or config.getoption("dist") != "load" or not plans.matrix_only():
        return None
    return _without_workers(
        config, jobs,
        "and the last run with these options ran only matrix items: no xdist workers; up to {jobs} environments' "
        "children run at once (a test outside the matrix runs in this process)",
    )


def _without_workers(config: pytest.Config, jobs: int, note: str) -> int:
    workers = len(config.getoption("tx"))
    config.option.dist = "no"
    config.option.tx = []
    explicit = config.option.envmatrix_jobs is not None or bool(config.getini("envmatrix_jobs").strip())
    chosen = jobs if explicit else workers
    config.stash[NOTE_KEY] = (
        f"envmatrix: -n {workers} {note.format(jobs=chosen)}" + (" (--envmatrix-jobs / envmatrix_jobs)" if explicit else "")
    )
    return chosen


def header_lines(config: pytest.Config) -> list[str]:
    note = config.stash.get(NOTE_KEY, None)
    return [note] if note else []


class EnvironmentGroups:
    """The controller's side under ``-n`` with the ``load`` distribution: one environment, one work unit.

    Registered only on the controller of a marker-declared matrix run. It
    also records, for the next run's :func:`matrix_only_jobs`, whether every
    item the workers collected is a matrix item.
    """

    def __init__(self, plans: PlanStore) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="envmatrix-xdist-"))
        self.plans = plans
        self.matrix_only: bool | None = None  # known once a worker has reported its collection

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        if self.matrix_only is None:
            groups = self.read()
            self.matrix_only = bool(ids) and all(nodeid in groups for nodeid in ids)

    def pytest_sessionfinish(self) -> None:
        if self.matrix_only is not None:
            self.plans.save([], matrix_only=self.matrix_only)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        node.workerinput[GROUPS_INPUT] = str(self.folder)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log):
        if config.getoption("dist") != "load":
            return None
        from .scheduling import EnvironmentScheduling

        return EnvironmentScheduling(config, log, self.read)

    def read(self) -> dict[str, str]:
        """node id → environment, from the first worker's map that reads as one; empty if none does."""
        for path in sorted(self.folder.glob("*.json")):
            try:
                groups = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError):
                continue
            if isinstance(groups, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in groups.items()):
                return groups
        return {}

    def pytest_unconfigure(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def publish_groups(config: pytest.Config, groups: dict[str, str]) -> None:
    """In a worker: write which environment each collected node id needs, for the controller's scheduler."""
    folder = getattr(config, "workerinput", {}).get(GROUPS_INPUT)
    if not folder:
        return
    worker = config.workerinput.get("workerid", str(os.getpid()))
    path = Path(folder) / f"{worker}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(groups), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # the controller then schedules item by item: more children, the same results


def sends_whole_environments(config: pytest.Config) -> bool:
    """In a worker: whether the controller's scheduler is :class:`EnvironmentGroups`', sending each environment whole."""
    return is_worker(config) and bool(config.workerinput.get(GROUPS_INPUT)) and config.getoption("dist", None) == "load"


def queued_items(config: pytest.Config, expected: list[pytest.Item] | None = None) -> list[pytest.Item] | None:
    """The items queued for this xdist worker, or None where that cannot be known.

    Reads the worker's queue (pytest-xdist 3's ``WorkerInteractor.torun``);
    any other shape of xdist gives None, and the caller falls back to the
    whole group. xdist fills the queue from another thread, one item at a
    time, so a unit of work sent in one message may be half there when its
    first item starts. With ``expected`` (the items the controller sends
    together), the queue is read again until they are all there, or until it
    stops growing: the child then gets them all, not half of them and a second
    child the rest.
    """
    if not is_worker(config):
        return None
    for plugin in config.pluginmanager.get_plugins():
        queue, session = getattr(plugin, "torun", None), getattr(plugin, "session", None)
        if queue is None or session is None or not hasattr(queue, "lock"):
            continue
        try:
            wanted = {id(item) for item in expected or ()}
            started = changed = time.monotonic()
            seen = -1
            while True:
                with queue.lock() as pending:
                    indices = [i for i in pending if isinstance(i, int)]
                upcoming = getattr(plugin, "nextitem_index", None)
                if isinstance(upcoming, int):
                    indices.append(upcoming)
                items = [session.items[i] for i in indices]
                now = time.monotonic()
                if len(items) != seen:
                    seen, changed = len(items), now
                if wanted <= {id(item) for item in items} or now - changed > _QUEUE_SETTLE_SECONDS or now - started > _QUEUE_WAIT_SECONDS:
                    return items
                time.sleep(0.005)
        except Exception:
            return None
    return None


_QUEUE_SETTLE_SECONDS = 0.2  # the queue has not grown for this long: the rest is not coming with it
_QUEUE_WAIT_SECONDS = 2.0


def child_nodeid(item: pytest.Item) -> str:
    """The node id the child sees: without a group suffix xdist's ``loadgroup`` adds (pytest before 9.2).

    A matrix item's own id ends with its combination's ``]``, so an ``@`` after
    the last ``]`` can only be that suffix.
    """
    nodeid = item.nodeid
    at = nodeid.rfind("@")
    if at > nodeid.rfind("]"):
        return nodeid[:at]
    return nodeid
