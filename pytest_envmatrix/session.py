"""The parent side of a matrix run: one object, registered as a plugin.

Items keep pytest's order. When the first item of an environment comes up,
the environment is built (or found in the cache) and all of its items run in
one child pytest; each item's reports are then replayed into the parent's
hooks, so the terminal, ``-x``, ``--lf`` and ``--junitxml`` see ordinary
reports.
"""

from __future__ import annotations

import shutil
import tempfile
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .envcache import BuildError, BuiltEnv, EnvCache
from .interpreters import InterpreterFinder, InterpreterNotFound
from .matrix import Combination, EnvSpec
from .recipe import Recipe, detect_project
from .runner import ChildOutcome, PlannedItem, python_sees_cwd, run_child
from .settings import Settings

COMBINATION_ARG = "envmatrix_combination"
_CWD_ON_SYS_PATH = python_sees_cwd()


def combination_of(item: pytest.Item) -> Combination | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    value = callspec.params.get(COMBINATION_ARG)
    return value if isinstance(value, Combination) else None


@dataclass
class EnvGroup:
    """The items of one run that share one environment."""

    spec: EnvSpec
    index: int  # order of first appearance, for stable work-directory names
    items: list[pytest.Item] = field(default_factory=list)
    future: Future | None = None  # the group's work, when started ahead of its first item
    pending: dict[str, list] | None = None  # nodeid → reports not yet replayed
    env: BuiltEnv | None = None
    recipe: Recipe | None = None


class EnvMatrixSession:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.cache = EnvCache(settings.cache_dir)
        self.finder = InterpreterFinder()
        self.groups: dict[EnvSpec, EnvGroup] = {}
        self.project = detect_project(config.rootpath, settings.project)
        self._workroot: Path | None = None
        self._basetemp_path: Path | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._running: set = set()  # child processes under way
        self.built: list[BuiltEnv] = []
        self.reused: list[BuiltEnv] = []
        self.failed: list[EnvGroup] = []

    # ---- collection

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.groups.clear()
        for item in items:
            combination = combination_of(item)
            if combination is None:
                continue
            group = self.groups.get(combination.env)
            if group is None:
                group = self.groups[combination.env] = EnvGroup(combination.env, len(self.groups))
            group.items.append(item)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtestloop(self, session: pytest.Session):
        if self.settings.list_only:
            self._print_matrix()
            session.config.option.collectonly = True  # pytest's own loop then runs nothing
        elif self._will_run(session):
            self._start()
        try:
            yield
        finally:
            self._stop()

    def _will_run(self, session: pytest.Session) -> bool:
        option = session.config.option
        if option.collectonly or hasattr(session.config, "workerinput"):
            # an xdist worker learns its items one by one: its groups start lazily
            return False
        return not (session.testsfailed and not option.continue_on_collection_errors)

    def _start(self) -> None:
        """Build and run environments ahead, up to ``jobs`` at once; replay stays in item order."""
        if not self.groups:
            return
        self._basetemp()  # create it here: pytest's factory is not safe to call from several threads
        jobs = max(1, min(self.settings.jobs, len(self.groups)))
        self._executor = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="envmatrix")
        for group in self.groups.values():
            group.future = self._executor.submit(self._run_group, group)

    def _stop(self) -> None:
        """End work nobody will replay (after -x, or an interrupt): queued groups and live children."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            for proc in list(self._running):
                proc.kill()
            self._executor.shutdown(wait=True)
            self._executor = None

    # ---- running

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem):
        combination = combination_of(item)
        if combination is None:
            return None
        group = self.groups[combination.env]
        if group.pending is None:
            group.pending = group.future.result() if group.future else self._run_group(group)
        reports = group.pending.pop(item.nodeid)
        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        for report in reports:
            report.user_properties.append(("envmatrix", combination.id))
            ihook.pytest_runtest_logreport(report=report)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def _run_group(self, group: EnvGroup) -> dict[str, list]:
        """The reports of every item of ``group``; never raises, so no result is ever lost."""
        try:
            return self._build_and_run(group)
        except Exception:
            message = f"envmatrix: internal error while running {group.spec.label}\n{traceback.format_exc()}"
            return {item.nodeid: [_setup_error(item, message)] for item in group.items}

    def _build_and_run(self, group: EnvGroup) -> dict[str, list]:
        try:
            group.recipe = self._recipe(group.spec)
        except InterpreterNotFound as exc:
            return {item.nodeid: [_skipped(item, f"envmatrix: {exc}")] for item in group.items}
        try:
            env = group.env = self.cache.ensure(group.recipe, rebuild=self.settings.rebuild)
        except BuildError as exc:
            self.failed.append(group)
            message = f"envmatrix: could not build the environment for {group.spec.label}\n{exc}"
            return {item.nodeid: [_setup_error(item, message)] for item in group.items}
        (self.reused if env.reused else self.built).append(env)

        planned = [_planned(item) for item in group.items]
        workdir = self._workdir() / f"env{group.index}"
        outcome = run_child(
            self.config,
            env,
            planned,
            workdir,
            basetemp=self._basetemp() / f"env{group.index}",
            cwd_on_sys_path=_CWD_ON_SYS_PATH,
            running=self._running,
        )
        return {item.nodeid: self._reports_for(item, group, outcome) for item in group.items}

    def _reports_for(self, item: pytest.Item, group: EnvGroup, outcome: ChildOutcome) -> list:
        reports = outcome.reports.get(item.nodeid, [])
        if reports and reports[-1].when == "teardown":
            return reports
        if reports:
            why = f"the child pytest in {group.spec.label} stopped while running this test"
        elif outcome.collect_errors:
            why = f"the child pytest in {group.spec.label} could not collect this test"
        elif outcome.collected is not None and item.nodeid not in outcome.collected:
            why = f"the child pytest in {group.spec.label} did not find this test"
        elif outcome.exitstatus is not None and outcome.exitstatus != 0 and outcome.collected is not None:
            # pytest stopped early on purpose (-x/--maxfail): the item simply did not run
            return [_skipped(item, "envmatrix: not run, the child stopped after an earlier failure")]
        else:
            why = f"the child pytest in {group.spec.label} reported no result for this test"
        return [*reports, _setup_error(item, _explain(why, outcome), when="teardown" if reports else "setup")]

    def _recipe(self, spec: EnvSpec) -> Recipe:
        return Recipe(
            spec=spec,
            interpreter=self.finder.find(spec.python),
            project=self.project,
            installer=self.settings.installer,
            index=self.settings.index,
        )

    def _workdir(self) -> Path:
        if self._workroot is None:
            self._workroot = Path(tempfile.mkdtemp(prefix="envmatrix-"))
        return self._workroot

    def _basetemp(self) -> Path:
        if self._basetemp_path is None:
            self._basetemp_path = self.config._tmp_path_factory.getbasetemp() / "envmatrix"
        return self._basetemp_path

    def pytest_unconfigure(self) -> None:
        if self._workroot is not None:
            shutil.rmtree(self._workroot, ignore_errors=True)

    # ---- reporting

    def pytest_report_header(self, config: pytest.Config) -> str:
        return f"envmatrix: installer {self.settings.installer.name}, cache {self.settings.cache_dir}"

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not (self.built or self.reused or self.failed):
            return
        seconds = sum(env.seconds for env in self.built)
        parts = [f"{len(self.built)} built ({seconds:.1f}s)", f"{len(self.reused)} reused"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed to build")
        terminalreporter.write_sep("-", "envmatrix: environments: " + ", ".join(parts))

    def _print_matrix(self) -> None:
        tw = self.config.get_terminal_writer()
        tw.line("envmatrix: tests and their combinations")
        for group in self.groups.values():
            for item in group.items:
                tw.line(f"  {item.nodeid}")
        tw.line("envmatrix: environments")
        for group in self.groups.values():
            try:
                recipe = self._recipe(group.spec)
            except InterpreterNotFound as exc:
                tw.line(f"  {group.spec.label}: {exc}")
                continue
            state = "cached" if self.cache.lookup(recipe) else "not built"
            tw.line(f"  {recipe.key[:16]}  {state:<9}  {group.spec.label}  ({len(group.items)} items)")
            tw.line(f"      {self.cache.env_dir(recipe)}")


def _planned(item: pytest.Item) -> PlannedItem:
    combination = combination_of(item)
    assert combination is not None
    definition = f"{item.parent.nodeid}::{item.originalname}"
    return PlannedItem(item.nodeid, definition, combination.id, combination.values())


def _explain(why: str, outcome: ChildOutcome) -> str:
    lines = [f"envmatrix: {why}"]
    if outcome.returncode is not None:
        lines.append(f"child exit code: {outcome.returncode}")
    for report in outcome.collect_errors:
        lines.append(f"collection error in {report.nodeid or 'the session'}:")
        lines.append(str(report.longrepr))
    tail = outcome.output.strip().splitlines()[-30:]
    if tail:
        lines.append("child output (last lines):")
        lines.extend("    " + line for line in tail)
    return "\n".join(lines)


def _report(item: pytest.Item, outcome: str, longrepr, when: str) -> pytest.TestReport:
    return pytest.TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords={name: 1 for name in item.keywords},
        outcome=outcome,
        longrepr=longrepr,
        when=when,
        sections=[],
        duration=0.0,
        user_properties=[],
    )


def _skipped(item: pytest.Item, reason: str) -> pytest.TestReport:
    return _report(item, "skipped", (str(item.path), item.location[1] + 1, f"Skipped: {reason}"), "setup")


def _setup_error(item: pytest.Item, message: str, when: str = "setup") -> pytest.TestReport:
    return _report(item, "failed", message, when)
