"""``--envmatrix-bisect PACKAGE``: the first release of a package in which a selected test fails.

A binary search over the releases between a good version and a bad one, as
``git bisect run`` searches commits. Each probe is one pytest of its own,
started as a child process with the user's own arguments (so ``-k``, test
paths, ini options and index options select and build as usual) and with
``--envmatrix-probe=PACKAGE=VERSION``: a suite-wide matrix of that one
version that every selected test runs in, marked or not (a marker's values
on the bisected package do not narrow it). So a probe is a normal matrix run:
its environment comes from, and stays in, the same cache; its tests run in a
child collected in that environment. A probe reports back through a small
JSON file (see :class:`ProbeRecorder`). Probes run one after the other: each
decides which is next.

A version is bad when any selected test fails or errors in it. Both ends are
run first, to confirm that the good one passes and the bad one fails. A
version whose environment cannot be built (no wheel for this interpreter, a
broken sdist) is skipped, as ``git bisect skip`` does: the next probe is the
nearest other version, and if only skipped versions remain between the last
good and the first bad, the answer is the range.

Exit status: 0 when one first bad version was found; 1 when the search
could not say (an end that does not confirm, or skipped versions that hide
the answer); 4 (usage error) for bad options.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

from . import versions
from .recipe import detect_project, project_dependencies
from .settings import Settings

#: Our own options, which the probes must not see again.
_DRIVER_OPTIONS = ("--envmatrix-bisect", "--envmatrix-good", "--envmatrix-bad")
_DRIVER_FLAGS = ("--envmatrix-list",)
PREFIX = "envmatrix bisect:"


class ProbeRecorder:
    """Registered in a probe's pytest: writes what the probe saw for the driver to read."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.passed = 0
        self.failures: list[dict] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failures.append({"nodeid": report.nodeid, "when": report.when, "text": report.longreprtext})
        elif report.passed and report.when == "call":
            self.passed += 1

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        tally = getattr(session.config.pluginmanager.get_plugin("envmatrix-session"), "tally", None)
        data = {
            "passed": self.passed,
            "failures": self.failures,
            "unbuildable": bool(tally and tally.failed),
            "built": bool(tally and tally.built),
            "exitstatus": int(exitstatus),
        }
        Path(self.path).write_text(json.dumps(data), encoding="utf-8")


@dataclass
class Probe:
    """One probe's outcome: ``good``, ``bad``, ``skip`` (could not be installed) or ``broken`` (the run itself failed)."""

    version: Version
    verdict: str
    passed: int = 0
    failures: list[dict] = field(default_factory=list)
    built: bool = False
    output: str = ""

    def summary(self) -> str:
        if self.verdict == "skip":
            return "skip (could not be installed)"
        counts = f"{self.passed} passed" + (f", {len(self.failures)} failed" if self.failures else "")
        return f"{self.verdict} ({counts}; environment {'built' if self.built else 'reused'})"


class Prober:
    """Runs probes as child pytests, in a scratch folder removed at the end."""

    def __init__(self, config: pytest.Config, package: str) -> None:
        self.package = package
        self.args = probe_args(list(config.invocation_params.args))
        self.cwd = config.invocation_params.dir
        self.scratch = Path(tempfile.mkdtemp(prefix="envmatrix-bisect-"))
        self.count = 0

    def __call__(self, version: Version) -> Probe:
        self.count += 1
        report = self.scratch / f"probe{self.count}.json"
        command = [
            sys.executable, "-m", "pytest", *self.args,
            f"--envmatrix-probe={self.package}={version}", f"--envmatrix-probe-report={report}",
            "-p", "no:cacheprovider",  # a probe's failures must not become the user's --lf
        ]
        done = subprocess.run(command, cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        output = done.stdout.decode("utf-8", "replace")
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Probe(version, "broken", output=output)
        failures = [f for f in data.get("failures", []) if isinstance(f, dict)]
        if data.get("unbuildable"):
            verdict = "skip"
        elif done.returncode == pytest.ExitCode.OK and data.get("passed"):
            verdict = "good"
        elif done.returncode == pytest.ExitCode.TESTS_FAILED and failures:
            verdict = "bad"
        else:
            verdict = "broken"
        return Probe(version, verdict, int(data.get("passed") or 0), failures, bool(data.get("built")), output)

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


def probe_args(args: list[str]) -> list[str]:
    """The user's arguments without the driver's own options."""
    out = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        if arg in _DRIVER_OPTIONS:
            skip_next = True
            continue
        if arg in _DRIVER_FLAGS or any(arg.startswith(option + "=") for option in _DRIVER_OPTIONS):
            continue
        out.append(arg)
    return out


def main(config: pytest.Config) -> int:
    settings = Settings.from_config(config)
    try:
        package = canonicalize_name(config.option.envmatrix_bisect, validate=True)
    except InvalidName:
        raise pytest.UsageError(f"--envmatrix-bisect: {config.option.envmatrix_bisect!r} is not a valid distribution name") from None
    try:
        project = detect_project(config.rootpath, settings.project, settings.project_build)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    resolver = versions.resolver_for_run(
        settings.index, settings.installer.name, settings.cache_dir, settings.versions_ttl, settings.refresh,
        settings.pre, project_dependencies(project),
    )
    good = _end(resolver, package, config.option.envmatrix_good or "current", "--envmatrix-good")
    bad = _end(resolver, package, config.option.envmatrix_bad or "latest", "--envmatrix-bad")
    if not good < bad:
        raise pytest.UsageError(f"--envmatrix-bisect {package}: the good version ({good}) must be older than the bad one ({bad})")
    try:
        releases = resolver.finder.releases(package, versions.Target.running(), settings.pre)
    except versions.VersionLookupError as exc:
        raise pytest.UsageError(f"--envmatrix-bisect {package}: {exc}") from None
    for note in resolver.finder.notes:
        print(note)
    candidates = [good, *(v for v in releases if good < v < bad), bad]
    prober = Prober(config, package)
    try:
        return Search(package, candidates, prober).run()
    finally:
        prober.close()


def _end(resolver: versions.Resolver, package: str, text: str, option: str) -> Version:
    text = text.strip()
    try:
        if text in ("current", "latest", "oldest"):
            text = resolver.resolve(package, text)[0]
        return Version(text)
    except versions.VersionLookupError as exc:
        raise pytest.UsageError(f"{option}: could not resolve {exc}") from None
    except InvalidVersion:
        raise pytest.UsageError(f"{option}: {text!r} is not a version (e.g. '1.26.4') nor current, latest or oldest") from None


class Search:
    """The binary search itself, over ``candidates`` (ascending; the first is good, the last bad)."""

    def __init__(self, package: str, candidates: list[Version], probe) -> None:
        self.package = package
        self.candidates = candidates
        self.probe = probe
        self.probes: list[Probe] = []

    def _run(self, index: int, role: str = "") -> Probe:
        version = self.candidates[index]
        result = self.probe(version)
        self.probes.append(result)
        label = f" ({role})" if role else ""
        say(f"probe {len(self.probes)}: {self.package} {version}{label}: {result.summary()}")
        return result

    def run(self) -> int:
        between = len(self.candidates) - 2
        expected = math.ceil(math.log2(between + 1)) if between > 0 else 0
        say(
            f"{self.package} {self.candidates[0]} (good) to {self.candidates[-1]} (bad): {between} release(s) between them, "
            f"about {expected} probe(s) besides the two ends"
        )
        for index, role, wanted in ((0, "the good end", "good"), (len(self.candidates) - 1, "the bad end", "bad")):
            result = self._run(index, role)
            if result.verdict != wanted:
                return self._unconfirmed(result, role, wanted)
        low, high = 0, len(self.candidates) - 1
        first_bad = self.probes[-1]
        skipped: set[int] = set()
        while high - low > 1:
            middle = (low + high) // 2
            left = [i for i in range(low + 1, high) if i not in skipped]
            if not left:
                break
            index = min(left, key=lambda i: (abs(i - middle), i))
            result = self._run(index)
            if result.verdict == "skip":
                skipped.add(index)
            elif result.verdict == "good":
                low = index
            elif result.verdict == "bad":
                high, first_bad = index, result
            else:
                return self._broken(result)
        return self._report(low, high, first_bad, skipped, between, expected)

    def _report(self, low: int, high: int, first_bad: Probe, skipped: set[int], between: int, expected: int) -> int:
        good, bad = self.candidates[low], self.candidates[high]
        hidden = [str(self.candidates[i]) for i in range(low + 1, high) if i in skipped]
        say(f"last good: {self.package} {good}")
        if hidden:
            say(f"first bad: one of {', '.join(hidden)} (could not be installed, skipped) or {bad}")
        else:
            say(f"first bad: {self.package} {bad}")
        between_probes = len(self.probes) - 2
        say(
            f"{len(self.probes)} probes, one environment each: the two ends, then {between_probes} for the {between} "
            f"release(s) between them (log2({between + 1}) = {math.log2(between + 1):.1f}, about {expected}), not {between + 2}"
        )
        say(f"the failure in {self.package} {bad}:")
        for failure in first_bad.failures:
            print(f"{failure['nodeid']} ({failure['when']})")
            print(_shorten(failure.get("text", "")))
        return 1 if hidden else 0

    def _unconfirmed(self, result: Probe, role: str, wanted: str) -> int:
        if result.verdict == "broken":
            return self._broken(result)
        if result.verdict == "skip":
            say(f"{role}, {self.package} {result.version}, could not be installed: choose another (--envmatrix-good, --envmatrix-bad)")
        else:
            say(f"{role}, {self.package} {result.version}, is not {wanted}: nothing to search (set --envmatrix-good / --envmatrix-bad)")
        for failure in result.failures:
            print(f"{failure['nodeid']} ({failure['when']})")
            print(_shorten(failure.get("text", "")))
        return 1

    def _broken(self, result: Probe) -> int:
        say(f"the probe of {self.package} {result.version} did not run the tests (no test selected, or a usage error); its output:")
        print(_shorten(result.output, 40))
        return 1


def say(text: str) -> None:
    print(f"{PREFIX} {text}", flush=True)


def _shorten(text: str, lines: int = 30) -> str:
    all_lines = text.rstrip().splitlines()
    if len(all_lines) <= lines:
        return "\n".join(all_lines)
    return "\n".join(["...", *all_lines[-lines:]])

