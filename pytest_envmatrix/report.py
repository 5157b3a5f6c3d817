"""What a matrix run tells people: the grid and summary in the terminal, JUnit properties,
the JSON report, and the GitHub Actions step summary.

The session hands this module finished facts. Per environment, what it asked
for, what it holds, and what became of it (built, reused, failed; how long it
took) go in a :class:`Tally`; per item, :func:`item_properties` gives what
each of its reports carries in ``user_properties`` (its combination, the
versions installed, the environment's key), which is what ``--junitxml``
writes. Outcomes are read back from the reports themselves, as pytest's hooks
deliver them: under pytest-xdist the controller receives every worker's
reports, their ``user_properties`` included, so the grid and the JSON are
made where the terminal is, from the same reports the terminal shows.

Run as ``python -m pytest_envmatrix.report merge a.json b.json -o all.json``
it merges the JSON reports of several CI jobs; ``markdown all.json`` prints
the merged grid as Markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Tuple

import pytest

from .files import write_whole

if TYPE_CHECKING:
    from .envcache import BuiltEnv
    from .matrix import Combination
    from .recipe import Recipe

FORMAT = "pytest-envmatrix-report"
FORMAT_VERSION = 1
COMBINATION_PROPERTY = "envmatrix"  # the combination's id, as in the item's id
KEY_PROPERTY = "envmatrix.key"
XDIST_GROUP_PREFIX = "envmatrix-"
SUMMARY_ENV = "GITHUB_STEP_SUMMARY"

#: Outcomes, most severe first: a grid cell standing for several items (a parametrized test) shows the first.
OUTCOMES = ("error", "failed", "xpassed", "passed", "xfailed", "skipped")
MARKS = {"passed": ".", "failed": "F", "error": "E", "skipped": "s", "xfailed": "x", "xpassed": "X"}
COLOURS = {
    "passed": {"green": True},
    "failed": {"red": True, "bold": True},
    "error": {"red": True, "bold": True},
    "skipped": {"yellow": True},
    "xfailed": {"yellow": True},
    "xpassed": {"yellow": True},
}
EMOJI = {"passed": "✅", "failed": "❌", "error": "💥", "skipped": "⏭️", "xfailed": "🔸", "xpassed": "🔶"}
#: The order pytest's own summary line counts outcomes in.
COUNT_ORDER = ("failed", "passed", "skipped", "xfailed", "xpassed", "error")
_MAX_MESSAGE = 300
_MAX_BLOCKS = 4  # a grid that needs more blocks of columns than this is folded into counts


# ----------------------------------------------------------------------------- what the session hands over


@dataclass
class Tally:
    """What happened to the session's environments (merged across xdist workers).

    Kept by environment key, not as counts: under xdist every worker looks up
    the environments of its own items (one builds an environment, the others
    reuse it, or each fails to build it), and the summary counts each
    environment once. The fields are plain lists and dicts, so a worker's tally
    crosses to the controller as it is. Worker threads write to it at once:
    every change holds its lock.
    """

    build_seconds: dict[str, float] = field(default_factory=dict)  # key → seconds spent building it
    reused_keys: list[str] = field(default_factory=list)
    failed_keys: list[str] = field(default_factory=list)
    early_keys: list[str] = field(default_factory=list)  # children started from the last run's plan, before collection ended
    notes: list[str] = field(default_factory=list)  # crashes and restarts
    environments: dict[str, dict] = field(default_factory=dict)  # key → what it asked for and holds (see describe)
    run_seconds: dict[str, float] = field(default_factory=dict)  # key → seconds its children ran
    failures: dict[str, str] = field(default_factory=dict)  # key → why it could not be built

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # not a field: asdict() leaves it out

    def count(self, env: BuiltEnv, recipe: Recipe | None = None, installed: dict | None = None, early: bool = False) -> None:
        with self._lock:
            if env.reused:
                _add(self.reused_keys, env.key)
            else:
                self.build_seconds[env.key] = self.build_seconds.get(env.key, 0.0) + env.seconds
            if early:
                _add(self.early_keys, env.key)
            if recipe is not None:
                self.environments.setdefault(env.key, describe(recipe, installed or {}))

    def fail(self, key: str, recipe: Recipe | None = None, reason: str = "") -> None:
        with self._lock:
            _add(self.failed_keys, key)
            self.failures.setdefault(key, reason)
            if recipe is not None:
                self.environments.setdefault(key, describe(recipe, {}))

    def ran(self, key: str, seconds: float) -> None:
        with self._lock:
            self.run_seconds[key] = self.run_seconds.get(key, 0.0) + seconds

    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)

    def described(self, key: str | None) -> dict | None:
        with self._lock:
            return self.environments.get(key) if key else None

    @property
    def built(self) -> int:
        return len(self.build_seconds)

    @property
    def total_build_seconds(self) -> float:
        return sum(self.build_seconds.values())

    @property
    def reused(self) -> int:
        """Environments that no process of this run built (another worker's reuse of a new one is not reuse)."""
        return len(set(self.reused_keys) - set(self.build_seconds))

    @property
    def failed(self) -> int:
        return len(set(self.failed_keys) - set(self.build_seconds) - set(self.reused_keys))

    @property
    def early(self) -> int:
        return len(set(self.early_keys))

    def merge(self, other: Tally) -> None:
        with self._lock:
            for key, seconds in other.build_seconds.items():
                self.build_seconds[key] = self.build_seconds.get(key, 0.0) + seconds
            for key, seconds in other.run_seconds.items():
                self.run_seconds[key] = self.run_seconds.get(key, 0.0) + seconds
            for mine, theirs in ((self.reused_keys, other.reused_keys), (self.failed_keys, other.failed_keys), (self.early_keys, other.early_keys)):
                for key in theirs:
                    _add(mine, key)
            for key, described in other.environments.items():
                self.environments.setdefault(key, described)
            for key, reason in other.failures.items():
                self.failures.setdefault(key, reason)
            self.notes.extend(other.notes)

    def as_data(self) -> dict:
        with self._lock:
            return dataclasses.asdict(self)


def _add(keys: list[str], key: str) -> None:
    if key not in keys:
        keys.append(key)


def describe(recipe: Recipe, installed: dict[str, str]) -> dict:
    """An environment as the reports show it: what was asked for, and what the environment holds."""
    return {
        "label": recipe.spec.label,
        "python": recipe.interpreter.version,
        "requested": list(recipe.requirements),
        "installed": dict(installed),
    }


def item_properties(combination: Combination, key: str | None, described: dict | None) -> list[tuple[str, str]]:
    """What each report of an item in ``combination`` carries, for ``--junitxml`` and the grid.

    ``envmatrix``: the combination's id; ``envmatrix.<axis>``: the version
    the environment holds of each axis (its interpreter's version for
    ``python``), where the environment was built; ``envmatrix.key``: the
    environment's cache key, where its recipe could be made.
    """
    properties = [(COMBINATION_PROPERTY, combination.id)]
    installed = (described or {}).get("installed")
    if installed:  # else the environment could not be built: nothing was installed
        if combination.python:
            properties.append((f"{COMBINATION_PROPERTY}.python", described.get("python", "")))
        for pin in combination.pins:
            version = installed.get(pin.canonical)
            if version is not None:
                properties.append((f"{COMBINATION_PROPERTY}.{pin.name}", version))
    if key:
        properties.append((KEY_PROPERTY, key))
    return properties


def plain_nodeid(nodeid: str) -> str:
    """The node id without the ``@group`` suffix xdist's loadgroup adds (pytest up to 9.1)."""
    head, sep, tail = nodeid.rpartition("@")
    if sep and tail.startswith(XDIST_GROUP_PREFIX):
        return head
    return nodeid


def function_of(nodeid: str) -> str:
    """The test function an item belongs to: its node id without parameters (the grid's row)."""
    nodeid = plain_nodeid(nodeid)
    if nodeid.endswith("]") and "[" in nodeid:
        return nodeid[: nodeid.index("[")]
    return nodeid


# ----------------------------------------------------------------------------- outcomes, read from reports


@dataclass
class ItemResult:
    """One item's outcome over its reports (setup, call, teardown, reruns)."""

    nodeid: str
    combination: str | None
    environment: str | None
    location: tuple[str, int | None]
    categories: list[str] = field(default_factory=list)
    duration: float = 0.0
    message: str | None = None

    @property
    def outcome(self) -> str:
        for outcome in OUTCOMES:
            if outcome in self.categories:
                return outcome
        return "passed" if not self.categories else self.categories[-1]

    def as_data(self) -> dict:
        outcome = self.outcome
        return {
            "nodeid": self.nodeid,
            "test": function_of(self.nodeid),
            "combination": self.combination,
            "environment": self.environment,
            "outcome": outcome,
            "duration": round(self.duration, 6),
            "path": self.location[0],
            "line": None if self.location[1] is None else self.location[1] + 1,
            "message": self.message if outcome in ("failed", "error") else None,
        }


def category(report: pytest.TestReport, status: tuple | None) -> str | None:
    """What a report adds to its item's outcome; None for what counts nothing (a passed setup, a rerun)."""
    name = status[0] if status else ""
    if name in OUTCOMES:
        return name
    if name == "rerun" or (not name and not report.failed):
        return None
    if report.failed:
        return "failed" if report.when == "call" else "error"
    if "failed" in name:  # a subtest's, say
        return "failed"
    return None


def _message(report: pytest.TestReport) -> str | None:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(crash, "message", None) or str(report.longrepr or "")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    line = lines[0].strip()
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 3] + "..."


class Results:
    """Every item's result, in the order items first reported."""

    def __init__(self) -> None:
        self.items: dict[str, ItemResult] = {}

    def add(self, report: pytest.TestReport, status: tuple | None) -> None:
        nodeid = plain_nodeid(report.nodeid)
        result = self.items.get(nodeid)
        if result is None:
            properties = {}
            for entry in report.user_properties or ():
                if isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], str):
                    properties.setdefault(entry[0], entry[1])
            location = report.location or (nodeid.split("::", 1)[0], None, "")
            result = self.items[nodeid] = ItemResult(
                nodeid,
                _text_or_none(properties.get(COMBINATION_PROPERTY)),
                _text_or_none(properties.get(KEY_PROPERTY)),
                (str(location[0]), location[1] if isinstance(location[1], int) else None),
            )
        result.duration += float(getattr(report, "duration", 0.0) or 0.0)
        found = category(report, status)
        if found is not None:
            result.categories.append(found)
            if found in ("failed", "error") and result.message is None:
                result.message = _message(report)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


# ----------------------------------------------------------------------------- the grid


@dataclass
class Grid:
    """One row per test function, one column per combination, the most severe outcome in each cell."""

    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], str]
    counts: dict[str, Counter]  # column → outcome → items

    @classmethod
    def of(cls, items: Iterable[dict]) -> Grid:
        """From item records (:meth:`ItemResult.as_data`); items outside any combination are left out."""
        rows: dict[str, tuple] = {}
        cells: dict[tuple[str, str], str] = {}
        counts: dict[str, Counter] = {}
        for index, item in enumerate(items):
            column = item.get("combination")
            if not column:
                continue
            row = item.get("test") or function_of(item["nodeid"])
            line = item.get("line")
            rows.setdefault(row, (str(item.get("path") or ""), line if isinstance(line, int) else -1, index))
            outcome = item["outcome"]
            counts.setdefault(column, Counter())[outcome] += 1
            previous = cells.get((row, column))
            if previous is None or _severity(outcome) < _severity(previous):
                cells[(row, column)] = outcome
        return cls(sorted(rows, key=lambda row: rows[row]), sorted(counts, key=_natural), cells, counts)

    def __bool__(self) -> bool:
        return bool(self.columns)


def _severity(outcome: str) -> int:
    return OUTCOMES.index(outcome) if outcome in OUTCOMES else len(OUTCOMES)


def _natural(text: str) -> list:
    """``numpy-1.26.4`` before ``numpy-2.1.3`` before ``numpy-10.0``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


Segment = Tuple[str, Optional[str]]  # text, and the outcome whose colour it takes (None: plain)


def grid_lines(grid: Grid, width: int) -> list[list[Segment]] | None:
    """The grid as terminal lines no wider than ``width``, or None when it does not fit.

    Columns are headed by the combination's id when those fit on one line;
    else by numbers, explained below the grid, in up to ``_MAX_BLOCKS``
    blocks of columns, each block with the row names again.
    """
    label = max(len(row) for row in grid.rows)
    widths = [max(len(column), 1) for column in grid.columns]
    if label + sum(2 + w for w in widths) <= width:
        return _block(grid, list(range(len(grid.columns))), grid.columns, widths, label)
    digits = len(str(len(grid.columns)))
    per_block = (width - label) // (2 + digits)
    if per_block < 1 or -(-len(grid.columns) // per_block) > _MAX_BLOCKS:
        return None
    lines: list[list[Segment]] = []
    for start in range(0, len(grid.columns), per_block):
        indices = list(range(start, min(start + per_block, len(grid.columns))))
        if lines:
            lines.append([])
        lines += _block(grid, indices, [str(i + 1) for i in indices], [digits] * len(indices), label)
    lines.append([])
    legend = [f"{str(i + 1).rjust(digits)}: {column}" for i, column in enumerate(grid.columns)]
    lines += _wrap(legend, width)
    return lines


def _block(grid: Grid, indices: list[int], headings: list[str], widths: list[int], label: int) -> list[list[Segment]]:
    lines: list[list[Segment]] = [[(" " * label + "".join("  " + h.center(w) for h, w in zip(headings, widths)).rstrip(), None)]]
    for row in grid.rows:
        line: list[Segment] = [(row.ljust(label), None)]
        for index, w in zip(indices, widths):
            outcome = grid.cells.get((row, grid.columns[index]))
            mark = MARKS.get(outcome, "?") if outcome else "-"
            pad = w - 1
            line.append(("  " + " " * (pad // 2), None))
            line.append((mark, outcome))
            line.append((" " * (pad - pad // 2), None))
        while line and line[-1][1] is None and not line[-1][0].strip():
            line.pop()
        lines.append(line)
    return lines


def _wrap(words: Sequence[str], width: int, gap: str = "   ") -> list[list[Segment]]:
    lines: list[list[Segment]] = []
    current = ""
    for word in words:
        if current and len(current) + len(gap) + len(word) > width:
            lines.append([(current, None)])
            current = word
        else:
            current = f"{current}{gap}{word}" if current else word
    if current:
        lines.append([(current, None)])
    return lines


def legend(grid: Grid) -> list[Segment]:
    present = set(grid.cells.values())
    out: list[Segment] = []
    for outcome in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        if outcome in present:
            out += [("   " if out else "", None), (MARKS[outcome], outcome), (f" {outcome}", None)]
    if len(grid.cells) < len(grid.rows) * len(grid.columns):
        out.append(("   - not in this combination", None))
    return out


def count_words(counter: Counter) -> list[Segment]:
    out: list[Segment] = []
    for outcome in COUNT_ORDER:
        if counter.get(outcome):
            word = "errors" if outcome == "error" and counter[outcome] > 1 else outcome
            if out:
                out.append((", ", None))
            out.append((f"{counter[outcome]} {word}", outcome))
    return out


def count_lines(grid: Grid) -> list[list[Segment]]:
    width = max(len(column) for column in grid.columns)
    return [[(f"{column.ljust(width)}  ", None), *count_words(grid.counts[column])] for column in grid.columns]


# ----------------------------------------------------------------------------- Markdown


def markdown(data: dict, link: Callable[[str, int | None], str | None] = lambda path, line: None) -> str:
    """The grid of a report (see :func:`report_data`) as GitHub-flavoured Markdown, failures listed below it.

    ``link(path, line)``: where a failed test's source can be seen (a URL), or None.
    """
    items = data.get("items", [])
    grid = Grid.of(items)
    total = Counter(item["outcome"] for item in items)
    words = ", ".join(text for text, _ in count_words(total) if text != ", ") or "no tests"
    out = [f"### pytest-envmatrix: {words}", ""]
    if grid:
        out.append("| test | " + " | ".join(_md(column) for column in grid.columns) + " |")
        out.append("| --- |" + " :-: |" * len(grid.columns))
        for row in grid.rows:
            cells = [EMOJI.get(grid.cells.get((row, column), ""), "–") for column in grid.columns]
            out.append(f"| `{_md(row)}` | " + " | ".join(cells) + " |")
        out.append("| **counts** | " + " | ".join(_md(_counts_text(grid.counts[c])) for c in grid.columns) + " |")
        out.append("")
        present = set(grid.cells.values())
        out.append(" · ".join(f"{EMOJI[o]} {o}" for o in ("passed", "failed", "error", "skipped", "xfailed", "xpassed") if o in present))
        out.append("")
    failures = [item for item in items if item["outcome"] in ("failed", "error")]
    if failures:
        out.append(f"**Failures ({len(failures)})**")
        out.append("")
        for item in failures:
            line = item.get("line")
            url = link(str(item.get("path") or ""), line if isinstance(line, int) else None)
            name = f"`{_md(item['nodeid'])}`"
            if url:
                name = f"[{name}]({url})"
            message = f": {_md(item['message'])}" if item.get("message") else ""
            out.append(f"- {EMOJI[item['outcome']]} {name} ({item['outcome']}){message}")
        out.append("")
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return str(text).replace("`", "'").replace("|", "\\|").replace("\n", " ")


def _counts_text(counter: Counter) -> str:
    return ", ".join(text for text, _ in count_words(counter) if text != ", ")


def github_link(rootdir: str | None, environ=os.environ) -> Callable[[str, int | None], str | None]:
    """Links to a line of a file at the commit under test, from the variables GitHub Actions sets; None outside it."""
    server, repository, sha, workspace = (environ.get(name) for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA", "GITHUB_WORKSPACE"))

    def link(path: str, line: int | None) -> str | None:
        if not (server and repository and sha and workspace and rootdir and path):
            return None
        try:
            relative = (Path(rootdir) / path).resolve().relative_to(Path(workspace).resolve())
        except (ValueError, OSError):
            return None
        anchor = f"#L{line}" if isinstance(line, int) else ""
        return f"{server}/{repository}/blob/{sha}/{relative.as_posix()}{anchor}"

    return link


# ----------------------------------------------------------------------------- the JSON report


def report_data(results: Iterable[ItemResult], tally: Tally, exitstatus: int, rootdir: str) -> dict:
    items = [result.as_data() for result in results]
    combinations: dict[str, list[str]] = {}
    for item in items:
        if item["environment"] and item["combination"]:
            _add(combinations.setdefault(item["environment"], []), item["combination"])
    data = tally.as_data()
    keys = list(dict.fromkeys([*data["environments"], *data["build_seconds"], *data["reused_keys"], *data["failed_keys"], *combinations]))
    environments = []
    for key in keys:
        described = data["environments"].get(key, {})
        built = key in data["build_seconds"]
        environments.append(
            {
                "key": key,
                "label": described.get("label"),
                "python": described.get("python"),
                "requested": described.get("requested", []),
                "installed": described.get("installed", {}),
                "built": built,
                "reused": not built and key in data["reused_keys"],
                "started_early": key in data["early_keys"],
                "failed": None if built or key in data["reused_keys"] else data["failures"].get(key),
                "build_seconds": round(data["build_seconds"].get(key, 0.0), 3),
                "run_seconds": round(data["run_seconds"].get(key, 0.0), 3),
                "combinations": sorted(combinations.get(key, []), key=_natural),
            }
        )
    return _whole(items, environments, int(exitstatus), rootdir, list(data["notes"]))


def _whole(items: list[dict], environments: list[dict], exitstatus: int, rootdir: str | None, notes: list[str], merged_from=None) -> dict:
    data = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pytest": pytest.__version__,
        "rootdir": rootdir,
        "exitstatus": exitstatus,
        "summary": dict(Counter(item["outcome"] for item in items)),
        "combinations": {c: dict(n) for c, n in Grid.of(items).counts.items()},
        "items": items,
        "environments": environments,
        "notes": notes,
    }
    if merged_from is not None:
        data["merged_from"] = merged_from
    return data



class ReportError(Exception):
    """A report file that cannot be read or merged; the message names it."""


def load(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ReportError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReportError(f"{path}: not a pytest-envmatrix report (no \"format\": \"{FORMAT}\")")
    if data.get("version") != FORMAT_VERSION:
        raise ReportError(f"{path}: report version {data.get('version')!r}, this pytest-envmatrix reads version {FORMAT_VERSION}")
    if not isinstance(data.get("items"), list) or not isinstance(data.get("environments"), list):
        raise ReportError(f"{path}: \"items\" and \"environments\" must be lists")
    for item in data["items"]:
        if not (isinstance(item, dict) and isinstance(item.get("nodeid"), str) and isinstance(item.get("outcome"), str)):
            raise ReportError(f"{path}: an item without a \"nodeid\" and an \"outcome\": {str(item)[:100]}")
    for env in data["environments"]:
        if not (isinstance(env, dict) and isinstance(env.get("key"), str)):
            raise ReportError(f"{path}: an environment without a \"key\": {str(env)[:100]}")
    return data


def merge(reports: Sequence[dict], names: Sequence[str]) -> dict:
    """One report of several (CI shards): items by node id, a later report's winning; environments by key."""
    items: dict[str, dict] = {}
    environments: dict[str, dict] = {}
    notes: list[str] = []
    for data in reports:
        for item in data["items"]:
            items[item["nodeid"]] = item
        for env in data["environments"]:
            mine = environments.get(env["key"])
            if mine is None:
                environments[env["key"]] = dict(env)
                continue
            mine["built"] = bool(mine.get("built")) or bool(env.get("built"))
            mine["reused"] = not mine["built"] and (bool(mine.get("reused")) or bool(env.get("reused")))
            mine["started_early"] = bool(mine.get("started_early")) or bool(env.get("started_early"))
            mine["failed"] = None if mine["built"] or mine["reused"] else (mine.get("failed") or env.get("failed"))
            for name in ("build_seconds", "run_seconds"):
                mine[name] = round(float(mine.get(name) or 0) + float(env.get(name) or 0), 3)
            for name in ("label", "python", "requested"):
                mine[name] = mine.get(name) or env.get(name)
            mine["installed"] = mine.get("installed") or env.get("installed") or {}
            mine["combinations"] = sorted(set(mine.get("combinations") or []) | set(env.get("combinations") or []), key=_natural)
        notes += [note for note in data.get("notes") or [] if isinstance(note, str)]
    statuses = [data.get("exitstatus") for data in reports if isinstance(data.get("exitstatus"), int)]
    failing = [status for status in statuses if status not in (0, 5)]
    exitstatus = failing[0] if failing else (5 if statuses and all(s == 5 for s in statuses) else 0)
    rootdir = next((data.get("rootdir") for data in reports if isinstance(data.get("rootdir"), str)), None)
    return _whole(list(items.values()), list(environments.values()), exitstatus, rootdir, notes, merged_from=list(names))


# ----------------------------------------------------------------------------- the plugin


class MatrixReport:
    """Registered as a plugin beside the session: it reads the reports and writes the outcome.

    In an xdist worker it only hands its tally to the controller; the
    controller (or a run without xdist) collects every report, and at the end
    writes the JSON report and the step summary and prints the grid.
    """

    def __init__(self, config: pytest.Config, report_path: Path | None) -> None:
        self.config = config
        self.report_path = report_path
        self.tally = Tally()
        self.results = Results()
        self._worker = hasattr(config, "workerinput")
        self._problems: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self._worker:
            return
        status = self.config.hook.pytest_report_teststatus(report=report, config=self.config)
        self.results.add(report, status)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        tally = getattr(node, "workeroutput", {}).get("envmatrix")
        if tally:
            self.tally.merge(Tally(**tally))

    @pytest.hookimpl(trylast=True)  # after the session has stopped its threads
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller reports
            workeroutput["envmatrix"] = self.tally.as_data()
            return
        if self.report_path is None and not os.environ.get(SUMMARY_ENV):
            return
        data = report_data(self.results.items.values(), self.tally, int(exitstatus), str(self.config.rootpath))
        if self.report_path is not None:
            try:
                write_whole(self.report_path, json.dumps(data, indent=2) + "\n")
            except OSError as exc:
                self._problems.append(f"envmatrix: could not write the report {self.report_path}: {exc}")
        summary = os.environ.get(SUMMARY_ENV)
        if summary and Grid.of(data["items"]):
            try:
                with open(summary, "a", encoding="utf-8") as handle:
                    handle.write(markdown(data, github_link(str(self.config.rootpath))))
            except OSError as exc:
                self._problems.append(f"envmatrix: could not append to {SUMMARY_ENV} ({summary}): {exc}")

    def pytest_terminal_summary(self, terminalreporter) -> None:
        tally = self.tally
        for note in tally.notes:
            terminalreporter.write_line(f"envmatrix: {note}")
        self._write_grid(terminalreporter)
        for problem in self._problems:
            terminalreporter.write_line(problem, red=True)
        if not (tally.built or tally.reused or tally.failed):
            return
        parts = [f"{tally.built} built ({tally.total_build_seconds:.1f}s)", f"{tally.reused} reused"]
        if tally.early:
            parts[-1] += f" ({tally.early} started during collection)"
        if tally.failed:
            parts.append(f"{tally.failed} failed to build")
        terminalreporter.write_sep("-", "envmatrix: environments: " + ", ".join(parts))

    def _write_grid(self, terminalreporter) -> None:
        grid = Grid.of(result.as_data() for result in self.results.items.values())
        if not grid:
            return
        width = terminalreporter._tw.fullwidth
        lines = None if self.config.getoption("verbose") < 0 else grid_lines(grid, width)
        title = f"envmatrix: {len(grid.rows)} test(s) in {len(grid.columns)} combination(s)"
        if lines is None:
            terminalreporter.write_sep("-", title + ", counts per combination")
            lines = count_lines(grid)
            if self.config.getoption("verbose") >= 0:
                lines.append([(f"(the grid is wider than the terminal's {width} columns)", None)])
        else:
            terminalreporter.write_sep("-", title)
            lines = [*lines, [], legend(grid)]
        for line in lines:
            terminalreporter.ensure_newline()
            for text, outcome in line:
                terminalreporter.write(text, **COLOURS.get(outcome, {}))
            terminalreporter.line("")


# ----------------------------------------------------------------------------- the command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_envmatrix.report", description="Work with pytest-envmatrix JSON reports.")
    commands = parser.add_subparsers(dest="command", required=True)
    merging = commands.add_parser("merge", help="merge the reports of several runs (CI shards) into one")
    merging.add_argument("reports", nargs="+", type=Path)
    merging.add_argument("-o", "--output", type=Path, required=True, help="where to write the merged report")
    showing = commands.add_parser("markdown", help="print a report's grid as Markdown (for $GITHUB_STEP_SUMMARY)")
    showing.add_argument("report", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "merge":
            reports = [load(path) for path in args.reports]
            merged = merge(reports, [str(path) for path in args.reports])
            write_whole(args.output, json.dumps(merged, indent=2) + "\n")
            summary = ", ".join(text for text, _ in count_words(Counter(merged["summary"])) if text != ", ") or "no tests"
            print(f"envmatrix: merged {len(reports)} reports into {args.output}: {summary}")
        else:
            data = load(args.report)
            sys.stdout.write(markdown(data, github_link(data.get("rootdir"))))
    except (ReportError, OSError) as exc:
        print(f"envmatrix report: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
