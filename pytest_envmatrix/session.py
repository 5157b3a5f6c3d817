"""The parent side of a matrix run: one object, registered as a plugin.

Environments are built and their children run ahead, in worker threads: up
to ``jobs`` builds and, separately, up to ``jobs`` children at once, so that
an environment built while children run (a build mostly waits for the index
and the disk) is ready when a child slot frees. Items keep pytest's order:
each matrix item waits for its own reports (which stream in while its child
still runs) and replays them into the parent's hooks, so the terminal,
``-x``, ``--lf`` and ``--junitxml`` see ordinary reports. Every item gets reports, whatever
happens to its environment or its child: no result is lost or invented.

When the last run with the same command line left a plan (see
:mod:`~pytest_envmatrix.plan`) and its environments are cached, their
children start when the session starts, while the parent still collects;
after collection each is kept only if its environment is unchanged and
every item it runs was collected again.
"""

from __future__ import annotations

import atexit
import gc
import shutil
import sys
import threading
import time
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from . import distributions, recorded, suite, verdict, versions
from .ci import suite_combinations
from .disk import footprint
from .distribution import child_nodeid, distributes, is_worker, publish_groups, queued_items, sends_whole_environments
from .envcache import BuildError, BuildStopped, BuiltEnv, EnvCache
from .installer import find_uv
from .interpreters import InterpreterFinder, InterpreterNotFound
from .items import PROBLEM_KEY, SKIP_KEY, collected_as, combination_of, unexpanded_reason
from .matrix import Combination, EnvSpec
from .plan import PlannedGroup, PlannedItem, PlanStore
from . import processes
from .processes import kill_group
from .collect_warnings import CollectionWarnings
from .compiled import source_tree_shadowing
from .recipe import Project, Recipe
from .report import COMBINATION_PROPERTY, Tally, item_properties
from .runner import Child, ChildOutcome, collection_args, start_child, thread_share
from .settings import Settings

if TYPE_CHECKING:
    from . import upgrade

_CWD_ON_SYS_PATH = processes.CWD_ON_SYS_PATH


class GroupResults:
    """Reports of one environment's items: filled by worker threads, taken in item order.

    Reports that reach an item after it was taken (a forked copy of a child
    reporting late, say) are kept as late reports, which the session replays
    at its next chance: a result is never dropped because it came late.
    """

    def __init__(self) -> None:
        self._ready: dict[str, tuple[list, list]] = {}
        self._done: set[str] = set()  # every item that got its reports, replayed or not
        self._late: list[tuple[str, list]] = []
        self._cond = threading.Condition()
        self._on_failure = None

    def watch(self, on_failure) -> None:
        """Call ``on_failure()`` for each item that fails from now on (and each that failed already)."""
        with self._cond:
            self._on_failure = on_failure
            failed = sum(_failed(reports) for reports, _ in self._ready.values())
        for _ in range(failed):
            on_failure()

    def put(self, nodeid: str, reports: list, warnings: list = ()) -> None:
        with self._cond:
            self._ready[nodeid] = (list(reports), list(warnings))
            self._done.add(nodeid)
            self._cond.notify_all()
            on_failure = self._on_failure
        if on_failure is not None and _failed(reports):
            on_failure()

    def add(self, nodeid: str, reports: list) -> None:
        """More reports for an item: with its others if not taken yet, else as late reports."""
        with self._cond:
            if nodeid in self._ready:
                self._ready[nodeid][0].extend(reports)
            elif nodeid in self._done:
                self._late.append((nodeid, list(reports)))
            else:
                self._ready[nodeid] = (list(reports), [])
                self._done.add(nodeid)
                self._cond.notify_all()

    def has(self, nodeid: str) -> bool:
        with self._cond:
            return nodeid in self._done

    def take(self, nodeid: str, abandon=None) -> tuple[list, list] | None:
        """The item's reports and the warnings it raised, once they are there; None once ``abandon()``."""
        self._cond.acquire()
        try:
            self._cond.wait_for(lambda: nodeid in self._ready or (abandon is not None and abandon()))
            return self._ready.pop(nodeid, None)
        finally:
            try:
                self._cond.release()
            except RuntimeError:
                # Ctrl-C can land inside wait() after it released the lock and before it took it
                # back: the KeyboardInterrupt on its way out is what matters, not this release
                pass

    def take_ready(self) -> dict[str, tuple[list, list]]:
        """Every item's reports that are there and not taken yet."""
        with self._cond:
            ready, self._ready = self._ready, {}
            return ready

    def wake(self) -> None:
        """Make a waiting ``take`` look at its ``abandon`` again."""
        with self._cond:
            self._cond.notify_all()

    def take_late(self) -> list[tuple[str, list]]:
        with self._cond:
            late, self._late = self._late, []
            return late


def _failed(reports: list) -> bool:
    return any(report.failed for report in reports)


@dataclass
class EnvGroup:
    """The items of one run that share one environment."""

    spec: EnvSpec
    index: int  # order of first appearance, for work-directory names
    items: list[pytest.Item] = field(default_factory=list)
    results: GroupResults = field(default_factory=GroupResults)
    started: bool = False  # all its items were handed to a worker thread up front
    recipe: Recipe | None = None
    env: BuiltEnv | None = None
    prepared: bool = False  # the environment was looked up (and built, skipped or failed) once
    runs: int = 0  # child runs so far, for their work-directory names


@dataclass
class EarlyRun:
    """A child started from the last run's plan, before this run's collection ended."""

    planned: PlannedGroup
    env: BuiltEnv
    index: int
    results: GroupResults = field(default_factory=GroupResults)
    procs: set = field(default_factory=set)  # its child process, while it runs
    decided: threading.Event = field(default_factory=threading.Event)
    group: EnvGroup | None = None  # set before ``decided``: the group that takes it over, or None
    # the modules it compares with their records (see recorded.py): collection must have used those records
    checked: frozenset = frozenset()

    def decide(self, group: EnvGroup | None) -> None:
        self.group = group
        self.decided.set()
        if group is None:
            for proc in list(self.procs):
                kill_group(proc)

    def rejected(self) -> bool:
        return self.decided.is_set() and self.group is None


class EnvMatrixSession:
    def __init__(
        self,
        config: pytest.Config,
        settings: Settings,
        tally: Tally,
        project: Project | None,
        resolver: versions.Resolver | None = None,
    ) -> None:
        """``tally``: where the facts about environments go, for the reports (see :mod:`~pytest_envmatrix.report`);
        ``resolver``: turns version selectors into versions."""
        self.config = config
        self.settings = settings
        self.resolver = resolver  # turns the suite-wide matrix's version selectors into versions
        self._stopping = threading.Event()  # set when the run loop ends: every wait and build of ours ends too
        self.cache = EnvCache(settings.cache_dir, max_builds=settings.jobs, stop=self._stopping)
        self._run_slots = threading.BoundedSemaphore(settings.jobs)  # children under way, early ones included
        self.finder = InterpreterFinder()
        self.groups: dict[EnvSpec, EnvGroup] = {}
        self.unexpanded: dict[str, pytest.TestReport] = {}  # node id → the report of an item that cannot run here
        self.project = project  # found once, by the plugin: a compiled project's sources are read to key it
        self.plans = PlanStore(settings.cache_dir, config)
        self.records = recorded.Records(config, recorded.load(self.plans.modules()), enabled=self._records_apply())
        self._early: list[EarlyRun] = []
        self._early_lock = threading.Lock()
        self._ran = False  # this process ran the matrix (not only listed or collected it)
        self._basetemp_path: Path | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._running: set = set()  # child processes under way
        self._failures = 0  # items that failed in any child so far, for -x / --maxfail
        self._failures_lock = threading.Lock()
        self._stopped_early = threading.Event()  # -x / --maxfail was reached in some child: the run ends now
        self._items: list[pytest.Item] = []  # the session's items, in pytest's order
        self._suite_children: dict[EnvSpec, tuple[Recipe, BuiltEnv, Child]] = {}  # collected, waiting for their selection
        self._collect_warnings = CollectionWarnings()  # what the children's collections raised
        self.tally = tally
        self.upgrade: upgrade.UpgradeCheck | None = None
        if settings.upgrade and settings.enabled:
            from . import upgrade  # only here: most runs never check an upgrade

            self.upgrade = upgrade.UpgradeCheck(settings.upgrade, settings.deps, self.project, settings.index, find_uv() or "uv")
            config.pluginmanager.register(self.upgrade, "envmatrix-upgrade")
        self._frozen = False
        # cleanups run last registered first: registered here, during our pytest_configure, which
        # runs before pytest's own plugins', this runs after pytest's garbage collections
        config.add_cleanup(self._unfreeze)

    def _records_apply(self) -> bool:
        """Whether test modules may be made from their records (see :mod:`~pytest_envmatrix.recorded`).

        Not where someone looks at the collection itself (``--collect-only``,
        ``--fixtures-per-test``), where collection is xdist's, where the
        module is imported anyway (``--doctest-modules``), nor under ``--lf``,
        which collects a module's failed tests only: a record made then would
        lack the others once the failures are fixed. Nor under ``-k`` or
        ``-m``, which select on the items' keywords and markers: a marker
        can come from what no digest covers (a data file, an environment
        variable), and the children, which check the record, see only their
        own environment's markers, so a stale one would select the wrong
        tests, unseen.
        """
        option = self.config.option
        return (
            self.settings.expands
            and not self.settings.suite_wide
            and not self.settings.rebuild
            and not option.collectonly
            and not getattr(option, "show_fixtures_per_test", False)
            and not getattr(option, "doctestmodules", False)
            and not getattr(option, "lf", False)
            and not getattr(option, "keyword", "")
            and not getattr(option, "markexpr", "")
            and not is_worker(self.config)
            and not distributes(self.config)
        )

    # ---- starting early

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Start the last run's children now, in their cached environments; collection decides later."""
        config = self.config
        if (
            not self.settings.enabled
            or self.settings.list_only
            or self.settings.rebuild
            or config.option.collectonly
            or is_worker(config)
            or distributes(config)
            or self.settings.suite_wide
        ):
            return
        for planned in self.plans.load():
            env = self.cache.reuse(planned.key)
            if env is not None:
                self._early.append(EarlyRun(planned, env, index=len(self._early)))
        if not self._early:
            return
        self._basetemp()
        executor = self._executor_for(len(self._early))
        for early in self._early:
            # the first ones start here: a worker thread would wait for collection to let go of the interpreter
            child = None
            if self._run_slots.acquire(blocking=False):
                try:
                    child = self._start_early(early)
                except Exception:
                    child = None  # its worker starts it again, or says why it cannot
                if child is None:
                    self._run_slots.release()
            executor.submit(self._run_early, early, child)

    def _start_early(self, early: EarlyRun) -> Child | None:
        """Start ``early``'s child in a slot the caller holds; None once collection has rejected it."""
        with self._early_lock:  # the records it checks and the decision to keep it agree
            if early.rejected():
                return None
            checks = self.records.checks(early.planned.items)
            early.checked = frozenset(checks)
        return self._start_child(early.env, early.planned.items, f"early{early.index}", early.procs, checks)

    def _run_early(self, early: EarlyRun, child: Child | None = None) -> None:
        """Read ``early``'s child (started already, or here once a slot frees), then hand its group on."""
        outcome = None
        if child is not None or not early.rejected():
            if child is None:
                self._run_slots.acquire()
            try:
                child = child or self._start_early(early)
                if child is not None:
                    stopping = lambda: self._stopping.is_set() or early.rejected()  # noqa: E731
                    outcome = self._child(early.env, early.planned.items, "", early.results, early.procs, stopping, child=child)
            except Exception:
                outcome = None  # the group, if it takes this over, runs its child afresh
            finally:
                self._run_slots.release()
        early.decided.wait()
        if early.group is not None:
            given = {item.nodeid for item in early.planned.items}
            self._run_group(early.group, first=(outcome, given) if outcome is not None else None)

    def _adopt_early(self) -> None:
        """Give each group the early child that runs only its items, in its environment; end the others."""
        with self._early_lock:
            self._adopt_early_locked()

    def _adopt_early_locked(self) -> None:
        candidates = {early.planned.label: early for early in self._early if not early.decided.is_set()}
        for group in self.groups.values():
            early = candidates.pop(group.spec.label, None)
            if early is None:
                continue
            try:
                group.recipe = self._recipe(group.spec)
            except Exception:  # the group's own job meets it again and reports it on its items
                early.decide(None)
                continue
            if not early.planned.fits(group.recipe.key, [_planned(item) for item in group.items]):
                early.decide(None)
                continue
            if not early.checked <= set(self.records.used):
                # it compares a module with a record that collection did not use (a version selector moved, say):
                # the module's items are real ones now, and its check could fail them for nothing
                early.decide(None)
                continue
            group.env, group.prepared, group.started = early.env, True, True
            group.results = early.results
            self.tally.count(early.env, group.recipe, distributions.installed(early.env.path), early=True)
            early.decide(group)
        for early in candidates.values():
            early.decide(None)

    def _executor_for(self, tasks: int) -> ThreadPoolExecutor:
        """Threads for ``jobs`` builds and ``jobs`` children: the slots, not the threads, bound the work."""
        if self._executor is None:
            jobs = max(1, min(2 * self.settings.jobs, tasks))
            self._executor = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="envmatrix")
        return self._executor

    # ---- collection

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makemodule(self, module_path: Path, parent: pytest.Collector):
        """A test module known from the last run, unchanged since: its items from its record, not its import."""
        if not self.records.enabled:
            return None
        return self.records.make_module(module_path, parent, self._marker_combinations)

    def _marker_combinations(self, marks: list, where: str) -> list[Combination] | None:
        from .plugin import marker_combinations  # the plugin imports this module

        unresolved: list[str] = []
        combinations = marker_combinations(self.config, marks, where, unresolved)
        return None if unresolved else combinations

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self.records.collectreport(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Before -k, -m and --lf choose: every item collected, for the records of the next run."""
        self.records.collected(items)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session):
        """With a suite-wide matrix, the children collect: this process imports no test module."""
        if not self.settings.suite_wide:
            return None
        if self.settings.list_only:
            # listing imports nothing and starts nothing: the suite's environments are listed without their tests
            session.items = []
            self.config.hook.pytest_collection_finish(session=session)
            return True
        self._basetemp()  # here: pytest's factory is not safe to call from several threads
        combinations, unresolved = self._suite_combinations()
        per_combination, skips = [], []
        if unresolved is not None:
            per_combination = [[suite.problem_item(session, combination)] for combination in combinations]
            for (item,) in per_combination:
                item.stash[PROBLEM_KEY] = unresolved
            combinations = []
        executor = self._executor_for(len(combinations))
        threads = thread_share(min(self.settings.jobs, max(len(combinations), 1)))
        jobs = [executor.submit(self._collect_in, session, combination, index, threads) for index, combination in enumerate(combinations)]
        for combination, job in zip(combinations, jobs):
            items, combination_skips = job.result()
            per_combination.append(items)
            skips.extend(combination_skips)
        items = suite.in_order(per_combination)
        self._warn_as_collected(combinations)
        for report in skips:
            session.ihook.pytest_collectreport(report=report)
        session.ihook.pytest_collectreport(report=pytest.CollectReport("", "passed", None, items))
        session.items = items
        self.config.hook.pytest_collection_modifyitems(session=session, config=self.config, items=items)
        self.config.hook.pytest_collection_finish(session=session)
        session.testscollected = len(items)
        return True

    def _warn_as_collected(self, combinations: list[Combination]) -> None:
        """The suite children's collection warnings, raised again inside pytest's collection (see
        :mod:`~pytest_envmatrix.collect_warnings`), for pytest to show under this process's filters."""
        for combination in combinations:
            collected = self._suite_children.get(combination.env)
            if collected is not None:
                self._collect_warnings.add(collected[2].outcome.collect_warnings, collected[1].path)
        for message in self._collect_warnings.take():
            try:
                warnings.warn_explicit(message.message, message.category, message.filename, message.lineno)
            except Exception:  # a filter of this process makes it an error: the child's did not, and collected the module
                pass

    def pytest_warning_recorded(self, warning_message: warnings.WarningMessage, when: str) -> None:
        if when == "collect":
            self._collect_warnings.shown(warning_message)

    def _suite_combinations(self) -> tuple[list[Combination], str | None]:
        """The combinations whose children collect the suite, and why none can run (version selectors unresolved), if so."""
        if self.upgrade is not None:
            python = self.finder.find(None).executable
            return self.upgrade.combinations(python, self._workdir() / "upgrade"), None
        combinations, unresolved = versions.combinations(self.resolver, self.settings.suite, self.settings.deps)
        return suite_combinations(self.settings, combinations), unresolved  # this shard's: the others' children never start

    def _collect_in(self, session: pytest.Session, combination: Combination, index: int, threads: int) -> tuple[list[pytest.Item], list]:
        """One combination's items (and module-level skips): its environment built, its child collected.

        Never raises: what goes wrong becomes an item that errors (or skips) with the reason.
        """
        problem = self.upgrade.problem(combination) if self.upgrade else None
        if problem is not None:
            item = suite.problem_item(session, combination)
            item.stash[PROBLEM_KEY] = problem
            return [item], []
        try:
            recipe = self._recipe(combination.env)
        except InterpreterNotFound as exc:
            item = suite.problem_item(session, combination)
            if self.settings.require_python:
                item.stash[PROBLEM_KEY] = f"envmatrix: {exc}, and --envmatrix-require-python (envmatrix_require_python) requires it"
            else:
                item.stash[SKIP_KEY] = f"envmatrix: {exc}"
            return [item], []
        try:
            env = self.cache.ensure(recipe, rebuild=self.settings.rebuild, on_wait=self._say)
        except (BuildError, BuildStopped) as exc:
            reason = exc.reason if isinstance(exc, BuildError) else str(exc)
            self.tally.fail(recipe.key, recipe, reason)
            item = suite.problem_item(session, combination)
            details = "" if str(exc) == reason else f"\n{exc}"
            item.stash[PROBLEM_KEY] = f"envmatrix: could not build {combination.env.label}: {reason}{details}"
            return [item], []
        self.tally.count(env, recipe, distributions.installed(env.path))
        if self.upgrade is not None:
            self.upgrade.environment_built(combination, env)
        started = time.monotonic()
        child = Child(
            self.config,
            env,
            {"suite": {"id": combination.id, "values": combination.values()}},
            # a module that cannot be collected in this combination is an error item of its own, and
            # the rest of the combination still runs
            [*self.config.args, *collection_args(self.config), "--continue-on-collection-errors"],
            workdir=self._workdir() / f"suite{index}",
            basetemp=self._basetemp() / f"suite{index}",
            cwd_on_sys_path=_CWD_ON_SYS_PATH,
            running=self._running,
            threads=threads,
        )
        described = child.collected(self.settings.timeout, self._stopping.is_set)
        self.tally.ran(env.key, time.monotonic() - started)
        if described is None:
            outcome = child.finish(set(), lambda *_: None, lambda *_: None)
            item = suite.problem_item(session, combination)
            item.stash[PROBLEM_KEY] = verdict.collection_failed(outcome, combination.id, self.settings.timeout)
            return [item], []
        outcome = child.outcome
        # the upgrade check runs every test in both its environments, whatever axes a test's marker names
        items, errors = suite.make_items(session, combination, described, None if self.upgrade else self.settings.suite)
        for item in items:
            if item.nodeid in errors:
                item.stash[PROBLEM_KEY] = errors[item.nodeid]
        for report in outcome.collect_errors:
            item = suite.problem_item(session, combination, report.nodeid)
            item.stash[PROBLEM_KEY] = f"envmatrix: could not collect {report.nodeid} in {combination.id}\n{report.longrepr}"
            items.append(item)
        self._suite_children[combination.env] = (recipe, env, child)
        return items, [suite.skip_report(report, combination) for report in outcome.collect_skips]

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Group the items that survived selection (-k, -m, --lf, ...) by environment."""
        self.groups.clear()
        self.unexpanded.clear()
        for item in session.items:
            combination = combination_of(item)
            if combination is None:
                skip = item.stash.get(SKIP_KEY, None)
                reason = unexpanded_reason(item)
                if skip is not None:
                    self.unexpanded[item.nodeid] = verdict.skipped(item, skip)
                elif reason is not None:
                    self.unexpanded[item.nodeid] = verdict.error(item, reason)
                continue
            group = self.groups.get(combination.env)
            if group is None:
                group = self.groups[combination.env] = EnvGroup(combination.env, len(self.groups))
            group.items.append(item)
        self._items = list(session.items)
        if is_worker(self.config):
            # before xdist reports this worker's collection: the controller's scheduler reads it then
            publish_groups(self.config, {item.nodeid: group.spec.label for group in self.groups.values() for item in group.items})

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtestloop(self, session: pytest.Session):
        if self.settings.list_only:
            if self.settings.output == "text":
                self._print_matrix()
            session.config.option.collectonly = True  # pytest's own loop then runs nothing
        elif self._will_run(session):
            self._adopt_early()
            if self.config.option.maxfail and not is_worker(self.config):
                for group in self.groups.values():
                    group.results.watch(self._saw_failure)
            self._start()
            self._freeze_collected(session)
        try:
            outcome = yield
        finally:
            self._stop()
        if outcome.excinfo is None:
            self._replay_late()
            for message in self._collect_warnings.take():  # of modules this process did not import
                self.config.hook.pytest_warning_recorded.call_historic(
                    kwargs=dict(warning_message=message, when="collect", nodeid="", location=None)
                )

    def _will_run(self, session: pytest.Session) -> bool:
        option = session.config.option
        if option.collectonly or is_worker(session.config):
            # an xdist worker learns its items one by one: its groups start lazily
            return False
        return not (session.testsfailed and not option.continue_on_collection_errors)

    def _start(self) -> None:
        if not self.groups:
            return
        self._ran = True
        self._basetemp()  # create it here: pytest's factory is not safe to call from several threads
        executor = self._executor_for(len(self.groups))
        for group in self.groups.values():  # in order of first appearance: the first items come first
            if not group.started:  # else an early child runs it already
                group.started = True
                collected = self._suite_children.pop(group.spec, None)
                if collected is not None:
                    # the recipe too: the reports name the environment's key and what it holds by it
                    group.recipe, group.env, group.prepared = *collected[:2], True
                    executor.submit(self._run_suite_group, group, collected[2])
                else:
                    executor.submit(self._run_group, group)
        self._abandon_suite_children()

    def _abandon_suite_children(self) -> None:
        """End the children whose items were all deselected: nothing of theirs will run."""
        for *_, child in self._suite_children.values():
            child.abandon()
        self._suite_children.clear()

    def _run_suite_group(self, group: EnvGroup, child: Child) -> None:
        """Tell a child that collected the suite which of its items to run, then read it like any other."""
        try:
            given = {child_nodeid(item) for item in group.items}
            with self._run_slots:
                if self._stopping.is_set():
                    child.abandon()
                    return
                child.select(sorted(given))
                group.runs += 1
                started = time.monotonic()
                outcome = child.finish(given, group.results.put, group.results.add, self.settings.timeout, self._stopping.is_set)
                self.tally.ran(group.env.key, time.monotonic() - started)
            self._run_items(group, group.env, group.items, first=(outcome, given))
        except Exception:
            self._fail_rest(group, f"envmatrix: internal error while running {group.spec.label}\n{traceback.format_exc()}")

    def _stop(self) -> None:
        """End work nobody will replay (after -x, or an interrupt): queued groups and live children."""
        self._stopping.set()
        self._abandon_suite_children()
        for early in self._early:
            if not early.decided.is_set():
                early.decide(None)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            for proc in [*self._running, *(p for early in self._early for p in early.procs)]:
                kill_group(proc)
            self._executor.shutdown(wait=True)
            self._executor = None

    def _freeze_collected(self, session: pytest.Session) -> None:
        """Exempt what collection left alive from the garbage collector's full passes, when no test runs here.

        pytest runs several full collections as it unconfigures (to catch late
        unraisable exceptions), and each walks every object alive: the collected
        items, the test modules and what they import. When every item is a matrix
        item, no test code runs in this process, so none of that can become
        garbage with a finalizer to report; walking it is pure cost (0.1-0.3 s
        per run, growing with the items). The reports replayed from now on are
        still collected as usual, and ``_unfreeze`` hands everything back at the
        very end (a pytest run in-process, as pytester's, leaves nothing frozen).
        """
        items = getattr(session, "items", None)  # pytest 7 leaves it unset on xdist's controller, which collects nothing
        if items and all(combination_of(item) is not None for item in items):
            gc.freeze()
            self._frozen = True

    def _unfreeze(self) -> None:
        if self._frozen:
            self._frozen = False
            gc.unfreeze()
            if _owns_the_process(self.config):
                _freeze_at_exit()

    # ---- running

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem):
        combination = combination_of(item)
        if combination is None:
            report = self.unexpanded.get(item.nodeid)
            if report is not None:  # it would run here, in the wrong environment: it errors (or skips) instead
                self._replay(item, [report], [], self._suite_problem_properties(item))
                return True
            return None
        group = self.groups[combination.env]
        if not group.started and not group.results.has(child_nodeid(item)):
            self._run_group(group, self._worker_batch(group, item))
        taken = group.results.take(child_nodeid(item), abandon=self._stopped_early.is_set)
        if taken is None:
            self._replay_ready(item.session)
            return True
        self._replay(item, *taken, self._properties(item, combination))
        self._replay_late()
        return True

    def _saw_failure(self) -> None:
        """An item failed in some child (from a worker thread): with -x / --maxfail reached, stop the run now.

        pytest would stop at the first failure it meets in item order; here the
        first failure any environment meets ends every child and build at once,
        so a long environment ahead in the order does not keep -x waiting.
        """
        with self._failures_lock:
            self._failures += 1
            reached = self._failures >= self.config.option.maxfail
        if reached and not self._stopped_early.is_set():
            self._stopped_early.set()
            self._stopping.set()  # children and builds end at once (their loops watch it)
            for group in list(self.groups.values()):
                group.results.wake()

    def _replay_ready(self, session: pytest.Session) -> None:
        """After an early stop: replay every result there is, in item order, the failures among them."""
        ready = {}
        for group in self.groups.values():
            ready.update(group.results.take_ready())
        for item in self._items:
            taken = ready.pop(child_nodeid(item), None)
            if taken is not None:
                self._replay(item, *taken, self._properties(item, combination_of(item)))
        self._replay_late()
        if not session.shouldfail:
            session.shouldfail = f"stopping after {self._failures} failures"

    def _properties(self, item: pytest.Item, combination: Combination) -> list[tuple[str, str]]:
        """What the item's reports carry for the reports (its combination, the versions installed, the key)."""
        group = self.groups.get(combination.env)
        key = group.recipe.key if group is not None and group.recipe is not None else None
        return item_properties(combination, key, self.tally.described(key))

    def _suite_problem_properties(self, item: pytest.Item) -> list[tuple[str, str]]:
        """A suite-wide combination that could not be collected still has its column in the grid."""
        if isinstance(item, suite.SuiteItem):
            return [(COMBINATION_PROPERTY, item.planned.combination_id)]
        return []

    def _replay(self, item: pytest.Item, reports: list, warnings: list, properties: list = ()) -> None:
        """Pass an item's reports to the parent's hooks, as if it had run here."""
        if reports[-1].when != "teardown":
            # our own skip and error reports stand for a whole item: end it as pytest would
            reports.append(verdict.report(item, "passed", None, "teardown"))
        ihook = item.ihook
        # the child's reports carry the item's location (same rootdir): computing it here again
        # reads the test's source, and was a third of the parent's cost per item
        location = tuple(reports[0].location) if reports[0].location else item.location
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=location)
        for warning in warnings:
            self.config.hook.pytest_warning_recorded.call_historic(
                kwargs=dict(warning_message=warning, when="runtest", nodeid=item.nodeid, location=None)
            )
        for report in reports:
            report.nodeid = item.nodeid  # the child's own, or xdist's group suffix, or a plugin's renaming
            report.user_properties.extend(properties)
            ihook.pytest_runtest_logreport(report=report)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=location)

    def _replay_late(self) -> None:
        """Replay reports that reached items after those were replayed (see :class:`GroupResults`)."""
        for group in self.groups.values():
            late = group.results.take_late()
            if not late:
                continue
            items = {child_nodeid(item): item for item in group.items}
            for nodeid, reports in late:
                item = items[nodeid]
                self._replay(item, reports, [], self._properties(item, combination_of(item)))

    def _worker_batch(self, group: EnvGroup, item: pytest.Item) -> list[pytest.Item]:
        """In an xdist worker: ``item`` and the group's items queued for this worker, to run in one child.

        A worker only knows the items sent to it so far. Running the whole
        group would run items that other workers run too; so a child gets the
        group's items that are already queued here (read from the worker's
        queue), and items that arrive later get a child of their own. Under
        the plugin's scheduler the controller sends the whole group at once,
        so the child waits until all of it is queued.
        """
        expected = None
        if sends_whole_environments(self.config):
            expected = [i for i in group.items if i is not item and not group.results.has(child_nodeid(i))]
        queued = queued_items(self.config, expected)
        if queued is None:
            return [i for i in group.items if not group.results.has(child_nodeid(i))]
        wanted = {id(i) for i in queued}
        return [item] + [i for i in group.items if i is not item and id(i) in wanted and not group.results.has(child_nodeid(i))]

    def _run_group(self, group: EnvGroup, items: list[pytest.Item] | None = None, first: tuple | None = None) -> None:
        """Give every item of ``items`` (default: the whole group) its reports.

        ``first``: a child that was started early on some of them: (its outcome, the node ids it was given).
        Never raises, so no item waits forever.
        """
        items = group.items if items is None else items
        try:
            self._build_and_run(group, items, first)
        except Exception:
            message = f"envmatrix: internal error while running {group.spec.label}\n{traceback.format_exc()}"
            self._fail_rest(group, message)

    def _fail_rest(self, group: EnvGroup, message: str, skip: bool = False) -> None:
        for item in group.items:
            if not group.results.has(child_nodeid(item)):
                group.results.put(child_nodeid(item), [verdict.skipped(item, message) if skip else verdict.error(item, message)])

    def _fail_environment(self, group: EnvGroup, items: list[pytest.Item], reason: str, details: str) -> None:
        """Error every item of a group that cannot get its environment; the first of ``items`` tells it in full."""
        waiting = [i for i in dict.fromkeys([*items, *group.items]) if not group.results.has(child_nodeid(i))]
        headline = f"envmatrix: could not build {group.spec.label}: {reason}"
        for item, report in verdict.environment_failed(waiting, headline, details):
            group.results.put(child_nodeid(item), [report])

    def _build_and_run(self, group: EnvGroup, items: list[pytest.Item], first: tuple | None = None) -> None:
        if not group.prepared:
            group.prepared = True
            try:
                recipe = group.recipe = group.recipe or self._recipe(group.spec)
            except InterpreterNotFound as exc:
                if self.settings.require_python:
                    reason = f"{exc}, and --envmatrix-require-python (envmatrix_require_python) requires it"
                    self._fail_environment(group, items, reason, verdict.MISSING_PYTHON_HINT)
                    return
                for item in group.items:
                    group.results.put(child_nodeid(item), [verdict.skipped(item, f"envmatrix: {exc}")])
                return
            try:
                group.env = self.cache.ensure(recipe, rebuild=self.settings.rebuild, on_wait=self._say)
            except BuildStopped:
                self._fail_rest(group, "envmatrix: not run, the run stopped before its environment was ready", skip=True)
                return
            except BuildError as exc:
                self.tally.fail(recipe.key, recipe, exc.reason)
                self._fail_environment(group, items, exc.reason, str(exc))
                return
            self.tally.count(group.env, recipe, distributions.installed(group.env.path))
        if group.env is not None:
            self._run_items(group, group.env, items, first)

    def _run_items(self, group: EnvGroup, env: BuiltEnv, items: list[pytest.Item], first: tuple | None = None) -> None:
        """Run ``items`` in a child; after a crash or a hang, again on the ones left.

        With ``first``, the child started early stands for the first run; the
        items it was not given run in the next.
        """
        by_id = {child_nodeid(item): item for item in items}
        remaining = [_planned(item) for item in items]
        while remaining and not self._stopping.is_set():
            if first is not None:
                (outcome, given), first = first, None
            else:
                given = {p.nodeid for p in remaining}
                with self._run_slots:
                    if self._stopping.is_set():
                        return
                    attempt = group.runs
                    group.runs += 1
                    outcome = self._child(env, remaining, f"env{group.index}-run{attempt}", group.results, self._running)
            if self._stopping.is_set():
                return
            self._settle(group, outcome, [p.nodeid for p in remaining if p.nodeid in given], by_id)
            remaining = [p for p in remaining if not group.results.has(p.nodeid)]
            if remaining and outcome.running is not None:
                item = by_id[outcome.running]
                self.tally.note(verdict.restart_note(outcome, item, combination_of(item).id, len(remaining)))

    def _settle(self, group: EnvGroup, outcome: ChildOutcome, given: list[str], by_id: dict) -> None:
        """Hand on what the child's end adds to its items' reports."""
        label = combination_of(by_id[given[0]]).id if given else group.spec.label
        context = verdict.Context(label, self.settings.timeout, self.config.option.maxfail)
        items = {child_nodeid(item): item for item in group.items}
        for nodeid, reports, caught in verdict.settle(outcome, given, items, group.results.has, context):
            if not group.results.has(nodeid):
                group.results.put(nodeid, reports, caught)
            else:
                group.results.add(nodeid, reports)

    def _start_child(self, env: BuiltEnv, items, name: str, running: set, recorded: dict | None = None) -> Child:
        """``recorded``: the modules made from records that the child checks (default: those of ``items``)."""
        return start_child(
            self.config,
            env,
            items,
            workdir=self._workdir() / name,
            basetemp=self._basetemp() / name,
            cwd_on_sys_path=_CWD_ON_SYS_PATH,
            running=running,
            threads=self._threads_per_child(),
            recorded=self.records.checks(items) if recorded is None else recorded,
        )

    def _child(
        self, env: BuiltEnv, items, name: str, results: GroupResults, running: set, stopping=None, child: Child | None = None
    ) -> ChildOutcome:
        """Run ``items`` in a child (``child``, when it was started already) and read it to its end."""
        started = time.monotonic() if child is None else child.started
        try:
            if child is None:
                child = self._start_child(env, items, name, running)
            outcome = child.finish(
                {item.nodeid for item in items}, results.put, results.add, self.settings.timeout, stopping or self._stopping.is_set
            )
        finally:
            self.tally.ran(env.key, time.monotonic() - started)
        if outcome.stale:
            self.records.drop(outcome.stale)
        self._collect_warnings.add(outcome.collect_warnings, env.path)
        return outcome

    def _threads_per_child(self) -> int:
        """Each child's share of the CPUs: children run ``jobs`` at once, or one per environment if fewer;
        an xdist worker runs one at a time, beside the other workers' children."""
        workers = getattr(self.config, "workerinput", {}).get("workercount")
        if workers:
            return thread_share(int(workers))
        return thread_share(min(self.settings.jobs, max(len(self.groups), len(self._early), 1)))

    def _recipe(self, spec: EnvSpec) -> Recipe:
        return Recipe(
            spec=spec,
            interpreter=self.finder.find(spec.python),
            project=self.project,
            installer=self.settings.installer,
            index=self.settings.index,
        )

    def _say(self, message: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"envmatrix: {message}")

    def _workdir(self) -> Path:
        """The children's plans, event files and output: beside pytest's base temporary directory's
        ``envmatrix`` folder (a child's pytest empties its own basetemp), so pytest's pruning of old
        base directories also takes what a killed run left."""
        return self._basetemp().parent / "envmatrix-work"

    def _basetemp(self) -> Path:
        if self._basetemp_path is None:
            self._basetemp_path = self.config._tmp_path_factory.getbasetemp() / "envmatrix"
        return self._basetemp_path

    def pytest_unconfigure(self) -> None:
        self._stop()  # after an interrupted collection, early children may still run
        self.cache.release()
        if self._basetemp_path is not None:
            shutil.rmtree(self._workdir(), ignore_errors=True)

    # ---- reporting

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        installer = self.settings.installer
        shared = f"; {', '.join(installer.shared)} shared with uv's cache" if installer.shared else ""
        links = f" (link mode {installer.link_mode}{shared})" if installer.name == "uv" else ""
        required = ", every python required" if self.settings.require_python else ""
        lines = [f"envmatrix: installer {installer.name}{links}, cache {self.settings.cache_dir}{required}"]
        if self.project is not None and self.project.compiled:
            lines.append(f"envmatrix: the project is built in each environment, against its packages ({self.project.compiled})")
            shadowing = source_tree_shadowing(
                Path(self.project.root), config.invocation_params.dir, _CWD_ON_SYS_PATH, config.option.importmode,
                [Path(p) for p in config.getini("pythonpath")],
            )
            if shadowing:
                lines.append(
                    f"envmatrix: WARNING: {shadowing}: the tests will import it from the source tree, which has no "
                    "compiled modules, instead of the environment's build; use a src/ layout, or keep the top of the "
                    "project off sys.path (see 'Projects with compiled code' in the docs)"
                )
        return lines

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._stop()
        if self._ran and not hasattr(session.config, "workerinput"):
            self.plans.save(
                [
                    PlannedGroup(group.spec.label, group.recipe.key, tuple(_planned(item) for item in group.items))
                    for group in self.groups.values()
                    # a suite-wide matrix starts no child before collection: its children collect
                    if group.env is not None and group.recipe is not None and not self.settings.suite_wide
                ],
                matrix_only=bool(self._items) and all(combination_of(item) is not None for item in self._items),
                modules=self.records.to_save() if self.records.enabled else {},
            )

    def _print_matrix(self) -> None:
        tw = self.config.get_terminal_writer()
        if self.settings.suite_wide:
            combinations, unresolved = self._suite_combinations()
            if unresolved is not None:
                tw.line(unresolved)
            kind = "the upgrade check" if self.upgrade is not None else "suite-wide matrix"
            tw.line(f"envmatrix: {kind}: every test, collected in each environment")
            specs = [(combination.env, f"{combination.id}: every test") for combination in combinations]
        else:
            tw.line("envmatrix: tests and their combinations")
            for group in self.groups.values():
                for item in group.items:
                    tw.line(f"  {item.nodeid}")
            specs = [(group.spec, f"{len(group.items)} items") for group in self.groups.values()]
        if self.resolver is not None and self.resolver.resolved:
            tw.line("envmatrix: version selectors")
            for line in self.resolver.lines():
                tw.line(line)
        tw.line("envmatrix: environments")
        for spec, what in specs:
            try:
                recipe = self._recipe(spec)
            except InterpreterNotFound as exc:
                tw.line(f"  {spec.label}: {exc}")
                continue
            built = self.cache.lookup(recipe)
            tw.line(f"  {recipe.key[:16]}  {'cached' if built else 'not built':<9}  {spec.label}  ({what})")
            tw.line(f"      {self.cache.env_dir(recipe)}")
            if built:
                tw.line(f"      {footprint(built.path).describe()}")


def _owns_the_process(config: pytest.Config) -> bool:
    """Whether this pytest is the process's own (``pytest ...``, ``python -m pytest ...``), not one run in-process."""
    return list(config.invocation_params.args) == sys.argv[1:]


_EXIT_FREEZE: list[bool] = []  # registered once per process


def _freeze_at_exit() -> None:
    """Exempt every object from the garbage collector's passes at interpreter exit.

    Python's shutdown runs full collections that walk every object alive:
    all that pytest, its plugins and this plugin imported (30-40 ms on the
    bench's machine, after the last child ended, with nothing left to do).
    Only a parent in which no test ran asks for this (see
    ``_freeze_collected``): its objects come from pytest, plugins and
    conftest.py files, and Python promises no finalizer of an object still
    alive at exit anyway. Objects are not freed any differently: reference
    counting still frees them as modules are torn down.
    """
    if not _EXIT_FREEZE:
        _EXIT_FREEZE.append(True)
        atexit.register(gc.freeze)


def _planned(item: pytest.Item) -> PlannedItem:
    if isinstance(item, suite.SuiteItem):
        return item.planned
    combination = combination_of(item)
    assert combination is not None
    definition = f"{item.parent.nodeid}::{item.originalname}"
    return PlannedItem(child_nodeid(item), definition, combination.id, combination.values(), collected_as(item))
