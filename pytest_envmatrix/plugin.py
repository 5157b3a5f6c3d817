"""pytest entry point: options, the marker, and the parametrization into combinations.

Without ``--envmatrix`` a marked test runs once, in the current environment,
as if the marker were absent (its arguments are still validated, so a typo
shows up in the fast local loop too). With it, each marked test becomes one
real item per combination through ``pytest_generate_tests`` (a unittest
method, which that hook never sees, is expanded as its collector reports: see
:mod:`~pytest_envmatrix.items`), so ``-k``, ``--lf``, ``--junitxml`` and
xdist need no special cases; the
:class:`~pytest_envmatrix.session.EnvMatrixSession` then runs those items in
their environments.
"""

from __future__ import annotations

import dataclasses
import itertools
import re

import pytest

from . import distribution, processes  # noqa: F401  processes: reads sys.path as Python started
from .items import COMBINATION_ARG, PROBLEM_KEY, expand_items
from .matrix import MarkerError, build_matrix, check_pytest_runs
from .plan import PlanStore
from .settings import Settings, add_options, cache_dir, max_age_days
from .two_words import warning_lines

# What only a matrix run needs (environments, children, reports, version lookups) is imported
# when one starts: a plain ``pytest`` run, where the plugin only checks markers, never pays for it.

MARKER_HELP = (
    "envmatrix({name: [versions]}, name=[versions], ..., deps=[requirements], python=[versions], exclude=[{axis: value}]): "
    "with --envmatrix, run this test once per combination of the given dependency versions, "
    "each in its own cached virtualenv."
)

SETTINGS_KEY = pytest.StashKey[Settings]()
# marker objects → their combinations: a module's pytestmark is the same object on every function
COMBINATIONS_KEY = pytest.StashKey[dict]()
PYTEST_REQUIRES_PYTHON_KEY = pytest.StashKey["str | None"]()
HINTS_KEY = pytest.StashKey[list]()  # what the user should know of markers that reached no test, for the summary
RESOLVER_KEY = pytest.StashKey["versions.Resolver | None"]()


class Unresolved:
    """The parameter of a combination whose version selectors could not be resolved: its item errors with ``reason``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    settings = Settings.from_config(config)
    config.stash[SETTINGS_KEY] = settings
    config.stash[COMBINATIONS_KEY] = {}
    config.stash[HINTS_KEY] = []
    config.stash[RESOLVER_KEY] = None
    if settings.expands:
        if settings.suite is not None or settings.suite_wide:
            # before xdist's own pytest_configure: with a suite-wide matrix, -n N starts no worker
            settings = dataclasses.replace(settings, jobs=distribution.suite_jobs(config, settings.jobs))
            config.stash[SETTINGS_KEY] = settings
        elif distribution.distributes(config) and not distribution.is_worker(config):
            plans = PlanStore(settings.cache_dir, config)
            jobs = distribution.matrix_only_jobs(config, settings.jobs, plans)
            if jobs is not None:
                settings = dataclasses.replace(settings, jobs=jobs)
                config.stash[SETTINGS_KEY] = settings
            else:
                config.pluginmanager.register(distribution.EnvironmentGroups(plans), "envmatrix-xdist-groups")
        from . import versions
        from .ci import CiRun
        from .recipe import detect_project, project_dependencies
        from .report import MatrixReport
        from .session import EnvMatrixSession

        report = MatrixReport(config, settings.report)
        try:
            project = detect_project(config.rootpath, settings.project, settings.project_build)
            resolver = config.stash[RESOLVER_KEY] = versions.resolver_for_run(
                settings.index, settings.installer.name, settings.cache_dir, settings.versions_ttl, settings.refresh,
                settings.pre, project_dependencies(project),
            )
            session = EnvMatrixSession(config, settings, report.tally, project, resolver)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.pluginmanager.register(report, "envmatrix-report")
        config.pluginmanager.register(session, "envmatrix-session")
        config.pluginmanager.register(CiRun(config, settings, resolver), "envmatrix-ci")
    if config.option.envmatrix_probe_report:
        from . import bisect

        config.pluginmanager.register(bisect.ProbeRecorder(config.option.envmatrix_probe_report), "envmatrix-probe")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """A path option written as two words moved the rootdir and ini file: say so first, with the fix."""
    return [*warning_lines(config), *distribution.header_lines(config)]


def pytest_cmdline_main(config: pytest.Config):
    """``--envmatrix-prune`` and ``--envmatrix-bisect`` are commands of their own: they run and exit."""
    if config.option.envmatrix_bisect and not config.option.envmatrix_probe:  # a probe is never a bisect (PYTEST_ADDOPTS)
        from . import bisect  # here: only a bisect needs it

        return bisect.main(config)
    if not config.option.envmatrix_prune:
        return None
    from .envcache import EnvCache

    root = cache_dir(config)
    days = max_age_days(config)
    removed = EnvCache(root).prune(days)
    for path, size in removed:
        print(f"envmatrix: removed {path} ({size / 1e6:.1f} MB)")
    freed = sum(size for _, size in removed)
    print(f"envmatrix: pruned {len(removed)} environment(s) unused for {days:g} days from {root}, freed {freed / 1e6:.1f} MB")
    return 0


@pytest.fixture(autouse=True)
def envmatrix_combination(request: pytest.FixtureRequest):
    """The combination an item runs in (axis name → value); None outside a matrix run."""
    return getattr(request, "param", None)


def closest_first(definition: pytest.Item) -> list[pytest.Mark]:
    """The envmatrix markers from the function outwards: function, class, base classes, module.

    pytest lists a class's markers from its base classes down (reversed MRO);
    the subclass's own marker is the closer one, so those are reversed here.
    """
    marks = []
    for node, group in itertools.groupby(definition.iter_markers_with_node("envmatrix"), key=lambda pair: pair[0]):
        node_marks = [mark for _, mark in group]
        if isinstance(node, pytest.Class):
            node_marks.reverse()
        marks.extend(node_marks)
    return marks


def marker_combinations(config: pytest.Config, marks: list[pytest.Mark], where: str, unresolved: list | None = None) -> list:
    """The combinations of a test's markers, its version selectors resolved (with ``--envmatrix``).

    When a selector cannot be resolved, its reason is appended to
    ``unresolved`` and the combinations keep the selectors as written; with
    no ``unresolved`` list to take the reason, it is a MarkerError.
    """
    cache = config.stash[COMBINATIONS_KEY]
    key = tuple(id(mark) for mark in marks)
    if key not in cache:
        from . import versions

        matrix = build_matrix([(mark.args, mark.kwargs) for mark in marks], where=where)
        combinations, problem = versions.combinations(config.stash[RESOLVER_KEY], matrix, config.stash[SETTINGS_KEY].deps)
        if matrix.python:
            check_pytest_runs(combinations, pytest.__version__, _pytest_requires_python(config), where)
        # the marks are kept with the result, so their ids cannot be reused by other objects
        cache[key] = (marks, combinations, problem)
    _, combinations, problem = cache[key]
    if problem is not None:
        if unresolved is None:
            raise MarkerError(f"{where}: {problem}")
        unresolved.append(problem)
    return combinations


def _pytest_requires_python(config: pytest.Config) -> str | None:
    """The Python versions this pytest supports, which every environment gets unless its matrix names pytest."""
    if PYTEST_REQUIRES_PYTHON_KEY not in config.stash:
        from importlib.metadata import PackageNotFoundError, metadata

        try:
            config.stash[PYTEST_REQUIRES_PYTHON_KEY] = metadata("pytest").get("Requires-Python")
        except PackageNotFoundError:  # pytest run from a source tree
            config.stash[PYTEST_REQUIRES_PYTHON_KEY] = None
    return config.stash[PYTEST_REQUIRES_PYTHON_KEY]


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marks = closest_first(metafunc.definition)
    if not marks:
        return
    settings = metafunc.config.stash[SETTINGS_KEY]
    unresolved: list[str] = []
    try:
        combinations = marker_combinations(metafunc.config, marks, where=metafunc.definition.nodeid, unresolved=unresolved)
    except MarkerError as exc:
        raise pytest.Collector.CollectError(str(exc)) from None
    if settings.expands:
        params = [Unresolved(unresolved[0]) for _ in combinations] if unresolved else combinations
        metafunc.parametrize(COMBINATION_ARG, params, ids=[c.id for c in combinations])


def pytest_itemcollected(item: pytest.Item) -> None:
    """An item whose version selectors could not be resolved errors with the reason (see :class:`Unresolved`)."""
    param = getattr(getattr(item, "callspec", None), "params", {}).get(COMBINATION_ARG)
    if isinstance(param, Unresolved):
        item.stash[PROBLEM_KEY] = param.reason


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Expand the marked unittest methods of each collector; a marked item of another kind fails its collector."""
    outcome = yield
    report = outcome.get_result()
    config = collector.config
    if not report.passed:
        _explain_parent_import(config, report)
        return
    if not report.result:
        return
    try:
        report.result = expand_items(
            report.result,
            lambda item: marker_combinations(config, closest_first(item), where=item.nodeid),
            config.stash[SETTINGS_KEY].expands,
        )
    except MarkerError as exc:
        outcome.force_result(pytest.CollectReport(report.nodeid, "failed", str(exc), [], sections=report.sections))


_IMPORT_TROUBLE = re.compile(r"No module named '([^']+)'|could not import '([^']+)'")


def _explain_parent_import(config: pytest.Config, report: pytest.CollectReport) -> None:
    """A module this process could not import for want of a package: say why, and what to use instead.

    With markers, this process collects the tests, so it imports every test
    module; a module that imports numpy at its top cannot be collected here
    when numpy is what the matrix provides, and a module-level
    ``importorskip`` would skip it quietly, with its marked tests.
    """
    settings = config.stash[SETTINGS_KEY]
    if not settings.enabled or settings.suite_wide:
        return
    found = _IMPORT_TROUBLE.search(str(report.longrepr))
    if found is None:
        return
    package = (found.group(1) or found.group(2)).split(".")[0]
    hint = (
        f"envmatrix: {report.nodeid or 'a module'} could not be imported in this process for want of {package!r}, "
        f"so its tests ran in no environment. With markers, this pytest collects the tests itself; a suite-wide matrix "
        f"(--envmatrix-axis {package}=..., or envmatrix_axes) lets each environment collect them instead, "
        f"or import {package} inside the tests."
    )
    if report.failed:
        report.sections.append(("envmatrix", hint))
    config.stash[HINTS_KEY].append(hint)


def pytest_collection_finish(session: pytest.Session) -> None:
    """A ``pytestmark`` in a conftest.py: pytest ignores it, so its envmatrix marker would be lost in silence."""
    config = session.config
    if not config.stash[SETTINGS_KEY].expands:
        return
    for plugin in config.pluginmanager.get_plugins():
        if not str(getattr(plugin, "__file__", "")).endswith("conftest.py"):
            continue
        marks = getattr(plugin, "pytestmark", [])
        marks = marks if isinstance(marks, (list, tuple)) else [marks]
        if any(getattr(mark, "name", getattr(getattr(mark, "mark", None), "name", None)) == "envmatrix" for mark in marks):
            config.stash[HINTS_KEY].append(
                f"envmatrix: {plugin.__file__} sets pytestmark = envmatrix(...), which pytest ignores in a conftest.py: "
                "no test got that matrix. Put the axes in envmatrix_axes (or --envmatrix-axis) to apply them to every test."
            )


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    for hint in config.stash.get(HINTS_KEY, []):
        terminalreporter.write_line(hint, yellow=True)
    resolver = config.stash.get(RESOLVER_KEY, None)
    if resolver is not None:
        for note in resolver.finder.notes:
            terminalreporter.write_line(note, yellow=True)
