"""The upgrade check: the suite before and after moving some packages, and only what changed.

``--envmatrix-upgrade numpy`` runs the selected tests in two environments,
as a suite-wide matrix of two combinations, ``upgrade-before`` and
``upgrade-after``, each collecting the suite itself:

- *before* reproduces the environment running pytest: every distribution
  installed there, pinned to its version (one installed from a URL or a
  local path is installed from there again), less the tooling of
  :data:`LEFT_OUT` and the project under test, which every environment gets
  editable anyway;
- *after* is the same set resolved again by uv with the named packages free
  to move (``uv pip compile --upgrade-package``, the *before* pins as
  preferences): they go to the newest release that installs, or to the
  version asked for, and a dependency moves only where the new release
  needs it to.

What each environment really holds is read from it once it is built, so the
summary's list of moved packages is the installer's doing, not a forecast.
The comparison and the table are plain functions of plain data (node ids,
outcomes, versions), tested without building anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .envcache import BuildError, BuiltEnv
from .installer import IndexOptions
from .matrix import Combination, EnvSpec, Pin, UpgradeTarget, canonical_requirement
from .recipe import Project

AXIS = "upgrade"
BEFORE = "before"
AFTER = "after"
SIDES = (BEFORE, AFTER)

#: Never pinned in the environment before the upgrade: installers and build tools, which the
#: environment's own tools provide (pinning an old pip or setuptools over them only fails or slows
#: the build), uv (a program, not a library the tests use), Debian's placeholder ``pkg-resources
#: 0.0.0``, which no index has, and this plugin, which the child pytest does not use.
LEFT_OUT = {
    "pip": "installer",
    "setuptools": "build tool",
    "wheel": "build tool",
    "distribute": "build tool",
    "uv": "installer",
    "pkg-resources": "Debian's placeholder",
    "pytest-envmatrix": "this plugin",
}

_TOOL_SECONDS = 900  # bound on reading an environment and on one resolution

# Run by the interpreter of an environment: its installed distributions, as importlib.metadata
# finds them on its sys.path (the current directory left out), first one of each name first.
_READ_SCRIPT = r"""
import json, os, sys
from importlib import metadata
here = os.getcwd()
sys.path[:] = [p for p in sys.path if p not in ("", here)]
found = []
for dist in metadata.distributions():
    try:
        name = dist.metadata["Name"]
        direct = dist.read_text("direct_url.json")
    except Exception:
        continue
    if name:
        found.append([name, dist.version, direct])
sys.stdout.write(json.dumps(found))
"""


class UpgradeError(Exception):
    """The environment after the upgrade could not be resolved; carries the resolver's explanation."""

    def __init__(self, summary: str, command: list[str] | None = None, output: str = "") -> None:
        super().__init__(summary)
        self.build_error = BuildError(summary, command, output)  # its one-line reason and its full text

    @property
    def reason(self) -> str:
        return self.build_error.reason

    def __str__(self) -> str:
        return str(self.build_error)


@dataclass(frozen=True)
class Installed:
    """One distribution installed in an environment."""

    name: str
    version: str
    direct_url: str | None = None  # the text of its direct_url.json, if it was installed from a URL or path

    @property
    def canonical(self) -> str:
        return canonicalize_name(self.name)


def read_installed(python: str | Path, timeout: float = _TOOL_SECONDS) -> list[Installed]:
    """The distributions the interpreter ``python`` finds, in its environment and on its ``PYTHONPATH``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONSTARTUP")}
    try:
        done = subprocess.run(
            [str(python), "-c", _READ_SCRIPT], capture_output=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UpgradeError(f"could not read the distributions installed for {python}: {exc}") from None
    try:
        rows = json.loads(done.stdout.decode("utf-8", "replace")) if done.returncode == 0 else None
    except ValueError:
        rows = None
    if not isinstance(rows, list):
        raise UpgradeError(
            f"could not read the distributions installed for {python} (exit code {done.returncode})",
            [str(python), "-c", "..."],
            done.stderr.decode("utf-8", "replace"),
        )
    return parse_installed(rows)


def parse_installed(rows: Iterable[object]) -> list[Installed]:
    """``[name, version, direct_url.json text or None]`` rows, the first of each name kept (it is the one imported)."""
    seen: dict[str, Installed] = {}
    for row in rows:
        if not (isinstance(row, list) and len(row) == 3 and all(isinstance(v, (str, type(None))) for v in row)):
            continue
        name, version, direct = row
        if not name or not version:
            continue
        dist = Installed(name, version, direct)
        seen.setdefault(dist.canonical, dist)
    return sorted(seen.values(), key=lambda d: d.canonical)


def _direct_requirement(dist: Installed) -> tuple[str | None, str | None]:
    """``name @ URL`` for a distribution installed from a URL or path, and that URL; (None, None) otherwise."""
    if not dist.direct_url:
        return None, None
    try:
        data = json.loads(dist.direct_url)
        url = data["url"]
        if not isinstance(url, str) or not url:
            return None, None
        vcs = data.get("vcs_info")
        if isinstance(vcs, dict) and isinstance(vcs.get("vcs"), str):
            commit = vcs.get("commit_id")
            url = f"{vcs['vcs']}+{url}" + (f"@{commit}" if isinstance(commit, str) and commit else "")
        requirement = f"{dist.canonical} @ {url}"
        Requirement(requirement)
        return requirement, url
    except (ValueError, KeyError, TypeError, AttributeError, InvalidRequirement):
        return None, None


def _same_path(url: str, root: str) -> bool:
    if not url.startswith("file:"):
        return False
    from urllib.parse import unquote, urlsplit

    try:
        return os.path.realpath(unquote(urlsplit(url).path)) == os.path.realpath(root)
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class Reproduction:
    """The environment before the upgrade: its requirements, and what was left out of it and why."""

    requirements: tuple[str, ...]  # canonical
    pinned: dict[str, str]  # canonical name → version, for the packages pinned by version
    left_out: tuple[tuple[str, str], ...]  # (name, why)


def reproduce(installed: Sequence[Installed], project: Project | None, targets: Sequence[UpgradeTarget]) -> Reproduction:
    """The requirements that make an environment like the one ``installed`` describes."""
    asked = {t.canonical for t in targets}
    project_name = _project_name(project)
    requirements, pinned, left_out = [], {}, []
    for dist in installed:
        requirement, url = _direct_requirement(dist)
        if dist.canonical in LEFT_OUT and dist.canonical not in asked:
            left_out.append((dist.name, LEFT_OUT[dist.canonical]))
        elif project is not None and (dist.canonical == project_name or (url is not None and _same_path(url, project.root))):
            left_out.append((dist.name, "the project under test, installed editable"))
        elif requirement is not None:
            requirements.append(canonical_requirement(requirement))
        elif not _is_version(dist.version):
            left_out.append((dist.name, f"version {dist.version!r} is not a version an installer can pin"))
        else:
            requirements.append(f"{dist.canonical}=={dist.version}")
            pinned[dist.canonical] = dist.version
    return Reproduction(tuple(sorted(requirements)), pinned, tuple(left_out))


def _is_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def _project_name(project: Project | None) -> str | None:
    """The canonical name in the project's ``pyproject.toml``, if it says; the project may be installed by name too."""
    if project is None:
        return None
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    try:
        name = tomllib.loads((Path(project.root) / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
        return canonicalize_name(name) if isinstance(name, str) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def resolve_after(
    before: Reproduction,
    targets: Sequence[UpgradeTarget],
    deps: Sequence[str],
    project: Project | None,
    python: str,
    index: IndexOptions,
    uv: str,
    scratch: Path,
) -> tuple[str, ...]:
    """The requirements after the upgrade: ``before`` resolved again with ``targets`` moved.

    First the targets without a version get one: the newest releases that
    install together on ``python`` (uv, asked for the targets alone). Then
    every package of ``before`` is an input, unpinned, with its version as a
    preference (the output file uv starts from), and each target is pinned:
    uv keeps each preferred version it can, and moves a package only where
    a target's release needs it to. ``deps`` (envmatrix_deps) and the
    project's own requirements take part, as they do in the build.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    compile_ = _Compiler(uv, python, index, scratch)
    if any(t.version is None for t in targets):
        newest = {canonicalize_name(Requirement(r).name): r for r in compile_([t.requirement for t in targets], [], [], "newest")}
        targets = [t if t.version else UpgradeTarget(t.name, t.canonical, _version(newest.get(t.canonical))) for t in targets]
    asked = {t.canonical for t in targets}
    inputs, preferences = [], []
    for requirement in before.requirements:
        name = canonicalize_name(Requirement(requirement).name)
        if name in asked:
            continue
        if name in before.pinned:
            inputs.append(name)
            preferences.append(requirement)
        else:
            inputs.append(requirement)
    inputs += [t.requirement for t in targets] + list(deps)
    if project is not None:
        inputs.append(f"-e {Path(project.root).as_uri()}")
    return compile_(inputs, preferences, [t.canonical for t in targets], "after")


def _version(requirement: str | None) -> str | None:
    specifiers = list(Requirement(requirement).specifier) if requirement else []
    return specifiers[0].version if len(specifiers) == 1 and specifiers[0].operator == "==" else None


@dataclass(frozen=True)
class _Compiler:
    """``uv pip compile`` for one interpreter and index, in a scratch folder."""

    uv: str
    python: str
    index: IndexOptions
    scratch: Path

    def __call__(self, inputs: Sequence[str], preferences: Sequence[str], upgrades: Sequence[str], name: str) -> tuple[str, ...]:
        source, output = self.scratch / f"{name}.in", self.scratch / f"{name}.txt"
        source.write_text("\n".join(inputs) + "\n", encoding="utf-8")
        output.write_text("\n".join(preferences) + "\n", encoding="utf-8")
        command = [
            self.uv, "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--python", self.python,
            *self.index.args(), *(arg for package in upgrades for arg in ("--upgrade-package", package)),
            "--output-file", str(output), str(source),
        ]
        try:
            done = subprocess.run(command, capture_output=True, timeout=_TOOL_SECONDS, stdin=subprocess.DEVNULL, cwd=self.scratch)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UpgradeError(f"uv could not resolve the environment after the upgrade: {exc}", command) from None
        if done.returncode != 0:
            text = (done.stdout + done.stderr).decode("utf-8", "replace")
            raise UpgradeError(f"uv could not resolve the environment after the upgrade (exit code {done.returncode})", command, text)
        return parse_compiled(output.read_text(encoding="utf-8"))


def parse_compiled(text: str) -> tuple[str, ...]:
    """The requirements of a compiled requirements file; options and the editable project left out."""
    out = set()
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        out.add(canonical_requirement(line))
    return tuple(sorted(out))


@dataclass(frozen=True)
class UpgradeCombination(Combination):
    """``upgrade-before`` or ``upgrade-after``: an id that stays the same from run to run, for ``--lf`` and ``-k``.

    Its values (the ``envmatrix_combination`` fixture) name the side and
    each asked-for package's version in it, so a test written for a marker
    (``envmatrix_combination["numpy"]``) reads the version it runs with.
    """

    side: str = BEFORE

    @property
    def id(self) -> str:
        return f"{AXIS}-{self.side}"


def combination(side: str, requirements: Iterable[str], title: str, targets: Sequence[UpgradeTarget] = ()) -> UpgradeCombination:
    """One side of the check; ``targets`` with the version each has on this side (None: not installed there)."""
    pins = [Pin(AXIS, AXIS, side, "")]
    pins += [Pin(t.name, t.canonical, t.version, t.requirement) for t in targets if t.version]
    return UpgradeCombination(tuple(pins), None, EnvSpec(None, tuple(sorted(set(requirements))), title), side)


def _versions(targets: Sequence[UpgradeTarget], requirements: Iterable[str]) -> list[UpgradeTarget]:
    """The targets with the version ``requirements`` pin them to, if any."""
    pinned = {}
    for requirement in requirements:
        parsed = Requirement(requirement)
        pinned[canonicalize_name(parsed.name)] = _version(requirement)
    return [UpgradeTarget(t.name, t.canonical, pinned.get(t.canonical)) for t in targets]


# ----------------------------------------------------------------------------- what moved


@dataclass(frozen=True)
class Move:
    name: str
    before: str | None  # None: new after the upgrade
    after: str | None  # None: gone after the upgrade
    asked: bool  # one of the packages the check was asked to move

    def describe(self) -> str:
        return f"{self.name} {self.before or '(absent)'} -> {self.after or '(removed)'}"


def moves(before: Sequence[Installed], after: Sequence[Installed], targets: Sequence[UpgradeTarget]) -> list[Move]:
    """Every distribution whose version differs between the two environments, the asked-for ones first."""
    asked = {t.canonical for t in targets}
    old = {d.canonical: d for d in before}
    new = {d.canonical: d for d in after}
    out = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a is not None and b is not None and a.version == b.version:
            continue
        shown = (b or a).name
        out.append(Move(shown, a.version if a else None, b.version if b else None, name in asked))
    return sorted(out, key=lambda m: not m.asked)


# ----------------------------------------------------------------------------- the comparison


@dataclass(frozen=True)
class Result:
    """One item's outcome in one environment: passed, failed (errors included) or skipped (xfail included)."""

    outcome: str
    failure: str = ""  # one line: what went wrong, for a failure


def side_of(nodeid: str) -> tuple[str, str] | None:
    """``(test, side)`` of an item of the upgrade check; the test is the node id without the combination.

    ``t.py::test_x[upgrade-after]`` → ``("t.py::test_x", "after")``;
    ``t.py::test_x[upgrade-after-1]`` → ``("t.py::test_x[1]", "after")``;
    ``t.py[upgrade-after]`` (a module that could not be collected) → ``("t.py", "after")``.
    """
    for side in SIDES:
        tag = f"{AXIS}-{side}"
        if f"[{tag}]" in nodeid:
            return nodeid.replace(f"[{tag}]", ""), side
        if f"[{tag}-" in nodeid:
            return nodeid.replace(f"[{tag}-", "["), side
    return None


def merge(result: Result | None, report: pytest.TestReport) -> Result:
    """An item's result so far, with one more of its reports (setup, call, teardown)."""
    if result is not None and result.outcome == "failed":
        return result
    if report.failed:
        return Result("failed", failure_line(report))
    if report.skipped:
        return Result("skipped")
    if report.when == "call" or result is None:
        return Result("passed")
    return result


def failure_line(report: pytest.TestReport) -> str:
    """What went wrong, in one line: the exception's message, or the last ``E`` line, or the first line."""
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if isinstance(message, str) and message.strip():
        return message.strip().splitlines()[0]
    text = getattr(report, "longreprtext", "") or str(report.longrepr or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    if errors:
        return errors[-1]
    return lines[0] if lines else report.outcome


@dataclass
class Comparison:
    regressions: list[tuple[str, str]] = field(default_factory=list)  # (test, its failure after the upgrade)
    fixes: list[tuple[str, str]] = field(default_factory=list)  # (test, its failure before the upgrade)
    unchanged: int = 0
    only_before: list[str] = field(default_factory=list)
    only_after: list[str] = field(default_factory=list)
    broken: list[tuple[str, str]] = field(default_factory=list)  # (side, why): an environment that did not run

    @property
    def exit_code(self) -> int:
        """1 when the upgrade breaks a test (or the check could not run), 0 otherwise: failures in both do not count."""
        return 1 if self.regressions or self.broken else 0


def compare(results: Mapping[str, Mapping[str, Result]]) -> Comparison:
    """Classify each test by its results before and after (test → side → result).

    A test present on one side only is compared with what stands for it on
    the other: a module that failed to collect there (``t.py`` for
    ``t.py::test_x``). ``envmatrix`` stands for a whole environment that
    could not be built or collected: the check did not run.
    """
    comparison = Comparison()
    covered: set[str] = set()
    for test, sides in results.items():
        if test == "envmatrix":
            for side in SIDES:
                if side in sides and sides[side].outcome == "failed":
                    comparison.broken.append((side, sides[side].failure))
            continue
        if len(sides) != 2:
            continue
        before, after = sides[BEFORE], sides[AFTER]
        if before.outcome == "passed" and after.outcome == "failed":
            comparison.regressions.append((test, after.failure))
        elif before.outcome == "failed" and after.outcome == "passed":
            comparison.fixes.append((test, before.failure))
        else:
            comparison.unchanged += 1
    for test, sides in results.items():
        if test == "envmatrix" or len(sides) != 1:
            continue
        (side, result), = sides.items()
        if result.outcome != "failed":
            continue
        other = AFTER if side == BEFORE else BEFORE
        inside = [t for t, s in results.items() if len(s) == 1 and other in s and _within(t, test)]
        if any(results[t][other].outcome == "passed" for t in inside):
            (comparison.regressions if side == AFTER else comparison.fixes).append((test, result.failure))
            covered.update(inside + [test])
    for test, sides in results.items():
        if test == "envmatrix" or len(sides) != 1 or test in covered:
            continue
        (comparison.only_before if BEFORE in sides else comparison.only_after).append(test)
    return comparison


def _within(test: str, container: str) -> bool:
    return test.startswith(container + "::") or test.startswith(container + "/")


def table(comparison: Comparison) -> list[str]:
    """The tests whose outcome changed, one row each, in aligned columns."""
    rows = [("regression", test, f"fails after: {failure}") for test, failure in comparison.regressions]
    rows += [("fixed", test, f"failed before: {failure}") for test, failure in comparison.fixes]
    if not rows:
        return []
    rows.insert(0, ("change", "test", "detail"))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip() for row in rows]


def summary_lines(
    comparison: Comparison,
    moved: Sequence[Move] | None,
    left_out: Sequence[tuple[str, str]],
) -> list[str]:
    """The upgrade check's summary, as the terminal shows it."""
    lines = []
    if moved is not None:
        asked = [m.describe() for m in moved if m.asked]
        along = [m.describe() for m in moved if not m.asked]
        lines.append("upgraded: " + (", ".join(asked) or "nothing (already at the target)"))
        if along:
            lines.append("moved with it: " + ", ".join(along))
    if left_out:
        lines.append("not reproduced from this environment: " + ", ".join(f"{name} ({why})" for name, why in left_out))
    for side, why in comparison.broken:
        lines.append(f"the environment {side} the upgrade did not run: {why}")
    rows = table(comparison)
    if rows:
        lines.append("")
        lines.extend(rows)
        lines.append("")
    counts = [f"{len(comparison.regressions)} regression(s)", f"{len(comparison.fixes)} fixed", f"{comparison.unchanged} unchanged"]
    if not comparison.broken:  # else every test is on one side only, and these counts say nothing more
        if comparison.only_before:
            counts.append(f"{len(comparison.only_before)} only before")
        if comparison.only_after:
            counts.append(f"{len(comparison.only_after)} only after")
    lines.append(", ".join(counts))
    return lines


# ----------------------------------------------------------------------------- the run


class UpgradeCheck:
    """One run's upgrade check, registered as a plugin: its two combinations, their results, the summary, the exit code.

    The session asks it for the combinations (and whether one cannot be
    had), tells it the environments it built, and replays the items'
    reports as usual; this object only watches.
    """

    def __init__(self, targets: Sequence[UpgradeTarget], deps: Sequence[str], project: Project | None, index: IndexOptions, uv: str) -> None:
        self.targets = tuple(targets)
        self.deps = tuple(deps)
        self.project = project
        self.index = index
        self.uv = uv
        self.reproduction: Reproduction | None = None
        self.problems: dict[str, str] = {}  # combination id → why it cannot be built
        self.built: dict[str, BuiltEnv] = {}  # side → its environment
        self.results: dict[str, dict[str, Result]] = {}
        self._combinations: list[Combination] | None = None

    @property
    def asked(self) -> str:
        return ", ".join(str(t) for t in self.targets)

    def combinations(self, python: str, scratch: Path, installed: Sequence[Installed] | None = None) -> list[Combination]:
        """Before and after, resolved once per run for the interpreter ``python``.

        ``installed``: the environment to reproduce; by default the one running pytest.
        """
        if self._combinations is not None:
            return self._combinations
        before_title = "the environment before the upgrade"
        after_title = f"the environment after upgrading {self.asked}"
        try:
            installed = read_installed(sys.executable) if installed is None else installed
        except UpgradeError as exc:
            self.problems[f"{AXIS}-{BEFORE}"] = self.problems[f"{AXIS}-{AFTER}"] = f"envmatrix: {exc}"
            self._combinations = [combination(BEFORE, (), before_title), combination(AFTER, (), after_title)]
            return self._combinations
        self.reproduction = reproduce(installed, self.project, self.targets)
        before_requirements = (*self.reproduction.requirements, *map(canonical_requirement, self.deps))
        before = combination(BEFORE, before_requirements, before_title, _versions(self.targets, self.reproduction.requirements))
        try:
            after_requirements = resolve_after(
                self.reproduction, self.targets, self.deps, self.project, python, self.index, self.uv, scratch
            )
            after = combination(AFTER, after_requirements, after_title, _versions(self.targets, after_requirements))
        except UpgradeError as exc:
            self.problems[f"{AXIS}-{AFTER}"] = f"envmatrix: could not resolve {after_title}: {exc.reason}\n{exc}"
            after = combination(AFTER, (), after_title)
        except OSError as exc:  # the scratch folder could not be written
            self.problems[f"{AXIS}-{AFTER}"] = f"envmatrix: could not resolve {after_title}: {exc}"
            after = combination(AFTER, (), after_title)
        self._combinations = [before, after]
        return self._combinations

    def problem(self, combination: Combination) -> str | None:
        return self.problems.get(combination.id)

    def environment_built(self, combination: Combination, env: BuiltEnv) -> None:
        if isinstance(combination, UpgradeCombination):
            self.built[combination.side] = env

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        found = side_of(report.nodeid)
        if found is None:
            return
        test, side = found
        sides = self.results.setdefault(test, {})
        sides[side] = merge(sides.get(side), report)

    def comparison(self) -> Comparison:
        """The results compared; an environment that was not built breaks the check, even with its error item deselected."""
        comparison = compare(self.results)
        for side in SIDES:
            if side in self.built or any(broken == side for broken, _ in comparison.broken):
                continue
            problem = self.problems.get(f"{AXIS}-{side}")
            why = problem.splitlines()[0] if problem else f"its environment could not be built (see envmatrix[{AXIS}-{side}])"
            comparison.broken.append((side, why))
        return comparison

    def moved(self) -> list[Move] | None:
        """What differs between the two built environments, read from them; None when either is missing."""
        if BEFORE not in self.built or AFTER not in self.built:
            return None
        try:
            before = read_installed(self.built[BEFORE].python)
            after = read_installed(self.built[AFTER].python)
        except UpgradeError:
            return None
        return moves(before, after, self.targets)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.results and not self.problems:
            return
        comparison = self.comparison()
        left_out = self.reproduction.left_out if self.reproduction else ()
        terminalreporter.write_sep("=", f"envmatrix upgrade check: {self.asked}")
        for line in summary_lines(comparison, self.moved(), left_out):
            red = line.startswith("regression") or line.startswith("the environment")
            terminalreporter.write_line(line, red=red, bold=red)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Exit 1 for a regression, 0 otherwise: a test that fails before and after is not the upgrade's doing."""
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and (self.results or self.problems):
            session.exitstatus = self.comparison().exit_code
