"""What a CI job needs from a matrix run: its shard, the durations that balance shards, the matrix as JSON, a cache key.

The CI system is the distributed engine: its job matrix runs the shards, its
cache step keeps the environment cache. This module selects a shard's items
next to pytest's own selection (``-k``, ``-m``): it deselects the others
after collection (for a suite-wide matrix, the session never starts the
other shards' environments, see :func:`suite_combinations`), and it hands
the session nothing but the items that stay. The split itself is
:mod:`~pytest_envmatrix.shard`'s.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from dataclasses import dataclass, field

import pytest

from . import shard as sharding
from . import versions
from .envcache import EnvCache
from .files import write_whole
from .interpreters import InterpreterFinder, InterpreterNotFound
from .items import combination_of
from .matrix import Combination, EnvSpec
from .recipe import Recipe, detect_project
from .settings import Settings

LIST_FORMAT = 1
CACHE_KEY_FORMAT = 1


def suite_combinations(settings: Settings, combinations: list[Combination]) -> list[Combination]:
    """Of the suite-wide matrix's combinations (selectors resolved), those this job collects and runs: its shard's, or all."""
    if settings.shard is None:
        return combinations
    assignment = suite_assignment(settings, combinations)
    return [c for c in combinations if assignment[c.env.label] == settings.shard.index]


def suite_assignment(settings: Settings, combinations: list[Combination]) -> dict[str, int]:
    total = settings.shard.total if settings.shard else 1
    weights = sharding.suite_weights(((c.env.label, c.id) for c in combinations), _balancing(settings))
    return sharding.assign(weights, total)


def _balancing(settings: Settings) -> sharding.Durations | None:
    """The recorded durations that balance the shards, when there are any."""
    return settings.durations if settings.durations is not None and settings.durations.items else None


def cache_key(recipe_keys, missing=()) -> str:
    """A digest of the environments a run needs: their cache keys, and the machine they are built for.

    ``missing``: labels of environments whose interpreter this machine lacks
    (they have no key; installing the interpreter must change the digest).
    """
    material = {
        "format": CACHE_KEY_FORMAT,
        "platform": f"{sys.platform}-{platform.machine()}",
        "environments": sorted(set(recipe_keys)),
        "missing": sorted(set(missing)),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


@dataclass
class _Environment:
    spec: EnvSpec
    combination: Combination  # the first one met: its values are the pins as the user wrote them
    items: int | None = 0  # None: not known before its child collects (a suite-wide matrix)
    shard: int = 1


@dataclass(eq=False)  # a plugin object: pluggy keys it by identity
class CiRun:
    """Registered as a plugin with every matrix run (``envmatrix-ci``)."""

    config: pytest.Config
    settings: Settings
    resolver: versions.Resolver | None = None  # turns a suite-wide matrix's version selectors into versions
    environments: dict[EnvSpec, _Environment] = field(default_factory=dict)
    unmarked: int = 0  # selected items that run in this process (all in shard 1)
    deselected: int = 0
    measured: dict[str, tuple[float, str]] = field(default_factory=dict)  # node id → (seconds, combination id)

    # ---- output for machines: stdout holds only the JSON or the key

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.settings.list_only and self.settings.output != "text":
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None and hasattr(reporter, "_tw"):
                from _pytest.config import create_terminal_writer

                reporter._tw = create_terminal_writer(self.config, sys.stderr)

    def pytest_report_header(self, config: pytest.Config) -> str | None:
        if self.settings.shard is None:
            return None
        how = f"durations in {self.settings.durations_path}" if _balancing(self.settings) else "item count"
        return f"envmatrix: shard {self.settings.shard} of the environments, balanced by {how}; unmarked tests run in shard 1"

    # ---- selection

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.settings.suite is not None and self.settings.enabled:
            return  # the session collected this shard's environments only
        self.environments.clear()
        self.unmarked = 0
        entries = []
        for item in items:
            combination = combination_of(item)
            if combination is None:
                self.unmarked += 1
                entries.append((item.nodeid, None, None))
                continue
            found = self.environments.setdefault(combination.env, _Environment(combination.env, combination))
            found.items += 1
            entries.append((item.nodeid, combination.env.label, combination.id))
        weights, parent = sharding.item_weights(entries, _balancing(self.settings))
        assignment = sharding.assign(weights, self.settings.shard.total if self.settings.shard else 1, parent)
        for environment in self.environments.values():
            environment.shard = assignment[environment.spec.label]
        if self.settings.shard is None or (self.settings.list_only and self.settings.output == "json"):
            return
        mine = self.settings.shard.index
        kept, dropped = [], []
        for item in items:
            combination = combination_of(item)
            shard = 1 if combination is None else assignment[combination.env.label]
            (kept if shard == mine else dropped).append(item)
        if dropped:
            self.deselected = len(dropped)
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept

    # ---- durations

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.settings.store_durations:
            return
        combination = next((value for name, value in report.user_properties if name == "envmatrix"), "")
        seconds, _ = self.measured.get(report.nodeid, (0.0, combination))
        self.measured[report.nodeid] = (seconds + (report.duration or 0.0), str(combination))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.settings.list_only and self.settings.output != "text" and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK  # a matrix without marked tests is still a matrix to print
        if (
            self.settings.shard is not None
            and not self.settings.list_only
            and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED
            and (self.deselected or (self.settings.suite is not None and self.settings.enabled and not suite_combinations(self.settings, self._suite_all())))
        ):
            session.exitstatus = pytest.ExitCode.OK  # more shards than environments: this one has nothing to do
        if not self.settings.store_durations or self.settings.list_only or hasattr(self.config, "workerinput"):
            return
        if not self.measured or self.settings.durations_path is None:
            return
        durations = self.settings.durations or sharding.Durations()
        durations.update(self.measured)
        path = self.settings.durations_path
        write_whole(path, durations.dumps())

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.settings.shard is None or self.settings.list_only or hasattr(self.config, "workerinput"):
            return
        mine = [e for e in self.environments.values() if e.shard == self.settings.shard.index]
        if self.settings.suite is not None and self.settings.enabled:
            terminalreporter.write_line(
                f"envmatrix: shard {self.settings.shard}: {len(suite_combinations(self.settings, self._suite_all()))} of "
                f"{len(self._suite_all())} suite-wide environments"
            )
            return
        if not self.environments and not self.unmarked:
            return  # pytest-xdist's controller: its workers collected and selected
        others = len(self.environments) - len(mine)
        terminalreporter.write_line(
            f"envmatrix: shard {self.settings.shard}: {len(mine)} environment(s), "
            f"{others} in other shards ({self.deselected} item(s) deselected)"
        )

    # ---- listing and cache key

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtestloop(self, session: pytest.Session):
        outcome = yield
        if outcome.excinfo is not None or not self.settings.list_only or self.settings.output == "text":
            return
        listing = self.listing()
        if self.settings.output == "json":
            text = json.dumps(listing, indent=2)
        else:
            mine = self.settings.shard.index if self.settings.shard else None
            text = listing["cache_key"] if mine is None else listing["shards"][mine - 1]["cache_key"]
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def _suite_all(self) -> list[Combination]:
        """Every combination of the suite-wide matrix, its version selectors resolved where they can be."""
        return versions.combinations(self.resolver, self.settings.suite, self.settings.deps)[0]

    def listing(self) -> dict:
        """The matrix as plain data: environments, their pins, keys, item counts and shards."""
        settings = self.settings
        suite_wide = settings.suite is not None and settings.enabled
        if suite_wide:
            combinations = self._suite_all()
            assignment = suite_assignment(settings, combinations)
            environments = [_Environment(c.env, c, None, assignment[c.env.label]) for c in combinations]
        else:
            environments = list(self.environments.values())
        finder = InterpreterFinder()
        project = detect_project(self.config.rootpath, settings.project, settings.project_build)
        cache = EnvCache(settings.cache_dir)
        total = settings.shard.total if settings.shard else 1
        shards = [{"shard": f"{n}/{total}", "environments": [], "items": 0, "keys": [], "missing": []} for n in range(1, total + 1)]
        shards[0]["items"] = self.unmarked
        out_envs = []
        for environment in sorted(environments, key=lambda e: e.spec.label):
            entry = {
                "label": environment.spec.label,
                "id": environment.combination.id,
                "python": environment.spec.python,
                "pins": environment.combination.values(),
                "requirements": list(environment.spec.requirements),
                "items": environment.items,
                "shard": environment.shard,
            }
            target = shards[environment.shard - 1]
            target["environments"].append(environment.spec.label)
            if environment.items is not None and target["items"] is not None:
                target["items"] += environment.items
            elif environment.items is None:
                target["items"] = None
            try:
                recipe = Recipe(environment.spec, finder.find(environment.spec.python), project, settings.installer, settings.index)
            except InterpreterNotFound as exc:
                entry.update(key=None, cached=False, path=None, problem=str(exc))
                target["missing"].append(environment.spec.label)
            else:
                entry.update(
                    key=recipe.key,
                    cached=cache.lookup(recipe) is not None,
                    path=str(cache.env_dir(recipe)),
                    requirements=list(recipe.requirements),
                )
                target["keys"].append(recipe.key)
            out_envs.append(entry)
        every_key = [key for s in shards for key in s["keys"]]
        every_missing = [label for s in shards for label in s["missing"]]
        for entry in shards:
            entry["cache_key"] = cache_key(entry.pop("keys"), entry.pop("missing"))
        return {
            "format": LIST_FORMAT,
            "suite_wide": suite_wide,
            "cache_dir": str(settings.cache_dir),
            "cache_key": cache_key(every_key, every_missing),
            "unmarked_items": None if suite_wide else self.unmarked,
            "unmarked_shard": 1,
            "environments": out_envs,
            "shards": shards,
        }
