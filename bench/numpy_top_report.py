"""The report of ``bench/numpy_top.py``: its section of ``docs/performance.md``, written between markers."""

from __future__ import annotations

import datetime
import os
import statistics
from pathlib import Path

import measure
import sections

START, END = "<!-- numpy-top -->", "<!-- /numpy-top -->"
TARGET = 1.25


def render(results: dict, names: list[str], floors: dict, targets: tuple[str, str], rounds: int, started: float, commit: str,
           command: str, profile: dict | None, instructions: list | None = None, timeline: list[str] | None = None) -> str:
    """``results``: per PYTHONDONTWRITEBYTECODE setting ("1", "unset"), a ``numpy_top.Measured``;
    ``targets``: the rows held to the target, two at a time and in turn."""
    foreign = [s.foreign for measured in results.values() for samples in measured.samples.values() for s in samples]
    when = datetime.datetime.fromtimestamp(started, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        START,
        "## Numpy imported at the top: markers and suite-wide, warm",
        "",
        f"Produced by `{command}` on {when}, pytest-envmatrix commit {commit}, {os.cpu_count()} CPUs.",
        "",
        "`bench/project_numpy_top`: the module under test and both test modules `import numpy` at the",
        "top; 20 tests for numpy 1.26.4 / 2.0.2 / 2.1.3 / 2.2.6; no project installed (the module is",
        "found through pytest's `pythonpath`); every environment already built. \"markers\": the tests",
        "carry `envmatrix(numpy=[...])` and the parent, whose venv has numpy 2.2.6 beside the plugin,",
        "imported the test modules (so numpy and the module under test) to collect them on the command",
        "line's first run; the warm runs measured make the items from that run's records of the modules",
        "and import none of them (see 'Test modules the parent does not import' in how-it-works.md). \"suite-wide\":",
        "the same tests without markers, `--envmatrix-axis=numpy=1.26.4,2.0.2,2.1.3,2.2.6`, a parent",
        "without numpy that imports no test module. The floor: the same four uv venvs, `python -m pytest`",
        "in each, in turn (held against `--envmatrix-jobs=1`) or two at a time (against `--envmatrix-jobs=2`).",
        "",
        f"Each bytecode mode: one unmeasured round, then {rounds} rounds in which every row runs once, side by",
        "side, the order reversed every other round. Seconds are medians; \"× floor\" is the median of the",
        "per-round ratios (each run against the floor measured beside it). CPU is user + system time of",
        "every process of the run; \"parent CPU\" is the parent pytest process's own (its threads included,",
        "its children not). CPU time moves much less with the machine's load than wall-clock time does.",
        "Every venv (the floor's, the parents', pytest-envmatrix's environments) holds the bytecode of what is",
        "installed in it, as pip and pytest-envmatrix's builds write it; the bytecode modes differ in the test",
        "modules and the module under test, whose bytecode (pytest's rewritten one for the tests) is written",
        "only without PYTHONDONTWRITEBYTECODE, and is removed before the first mode.",
        f"Other processes kept a median of {statistics.median(foreign):.2f} CPUs (max {max(foreign):.2f}) of the machine's",
        f"{os.cpu_count()} busy during the counted runs: the wall-clock figures carry that noise.",
        "",
    ]
    for setting in results:
        out += _table(results[setting], names, floors, setting)
    out += _targets(results, *targets)
    if instructions:
        out += _instructions(instructions)
    if timeline:
        out += timeline
    if profile:
        out += _profile(profile)
    out += FINDINGS
    out += [END]
    return "\n".join(out) + "\n"


def _table(measured, names: list[str], floors: dict, setting: str) -> list[str]:
    lines = [
        f"PYTHONDONTWRITEBYTECODE {'=1' if setting == '1' else 'unset'}:",
        "",
        "| run | wall: s | × floor | CPU: s | CPU × floor | parent CPU: s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        samples = measured.samples[name]
        floor = floors.get(name)
        wall, cpu = measure.median_wall(samples), measure.median_cpu(samples)
        if floor:
            ratio = f"{measure.median_ratio(samples, measured.samples[floor]):.2f}×"
            cpu_ratio = f"{measure.median_ratio(samples, measured.samples[floor], 'cpu'):.2f}×"
            parent = f"{statistics.median(measured.parent_cpu[name]):.2f}"
            lines.append(f"| pytest-envmatrix, {name} | {wall:.2f} | {ratio} | {cpu:.2f} | {cpu_ratio} | {parent} |")
        else:
            lines.append(f"| {name} | {wall:.2f} | | {cpu:.2f} | | |")
    return [*lines, ""]


def _targets(results: dict, two_at_a_time: str, in_turn: str) -> list[str]:
    lines = ["| target (markers) | PYTHONDONTWRITEBYTECODE | measured | |", "| --- | --- | --- | --- |"]
    for setting, measured in results.items():
        two = measure.median_ratio(measured.samples[two_at_a_time], measured.samples["floor, two at a time"])
        one = measure.median_ratio(measured.samples[in_turn], measured.samples["floor, in turn"])
        lines.append(f"| `--envmatrix-jobs=2` ≤ {TARGET}× the floor two at a time | {setting} | {two:.2f}× | {'met' if two <= TARGET else '**missed**'} |")
        lines.append(f"| `--envmatrix-jobs=1` ≤ {TARGET}× the floor in turn | {setting} | {one:.2f}× | {'met' if one <= TARGET else '**missed**'} |")
    for setting, measured in results.items():
        two = measure.median_ratio(measured.samples[two_at_a_time], measured.samples["floor, two at a time"], "cpu")
        one = measure.median_ratio(measured.samples[in_turn], measured.samples["floor, in turn"], "cpu")
        lines.append(f"| the same in CPU time: `--envmatrix-jobs=2` ≤ {TARGET}× the floor's | {setting} | {two:.2f}× | {'met' if two <= TARGET else '**missed**'} |")
        lines.append(f"| the same in CPU time: `--envmatrix-jobs=1` ≤ {TARGET}× the floor's | {setting} | {one:.2f}× | {'met' if one <= TARGET else '**missed**'} |")
    return [
        *lines,
        "",
        "The targets are wall-clock ones. When other processes keep the machine's CPUs busy, a run's wall-clock",
        "time follows their load more than its own work, and its CPU time is the better guide: with every CPU",
        "busy, wall-clock time is the work divided among the CPUs. The CPU rows hold the run's whole work",
        "(parent, supervisors, children) to the floor's; on an idle machine the parent's start-up before the",
        "children start adds to the wall-clock time on top of that, since one CPU has nothing to do meanwhile.",
        "",
    ]


def _instructions(counts: list[tuple[str, str, int]]) -> list[str]:
    """The counts (key, label, instructions), then the marker-declared parent split into its pieces."""
    n = {key: count for key, _label, count in counts}
    python, pytest_, plugin, parent, floor = n["python"], n["pytest"], n["plugin"], n["parent"], n["floor"]
    packaging_share = (n["packaging"] - pytest_) / (plugin - pytest_)
    pieces = [
        ("start Python", python),
        ("import pytest", pytest_ - python),
        ("import pytest-envmatrix (packaging's requirement parser is {:.0%} of it)", plugin - pytest_),
        ("everything else: options, entry points, 80 items made from the module records, early start, replay, summary",
         parent - plugin),
    ]
    lines = [
        "### Where the marker-declared parent's time goes",
        "",
        "Instructions executed (valgrind's callgrind, `--instructions`; the process and its threads, not the",
        "processes it starts), PYTHONDONTWRITEBYTECODE unset: a count the machine's load does not move.",
        "",
        "| what | instructions (millions) |",
        "| --- | --- |",
        *[f"| {label} | {count / 1e6:,.0f} |" for _key, label, count in counts],
        "",
        "| the marker-declared parent (jobs=2), in pieces | millions | share |",
        "| --- | --- | --- |",
    ]
    for label, count in pieces:
        lines.append(f"| {label.format(packaging_share)} | {count / 1e6:,.0f} | {count / parent:.0%} |")
    lines += [
        "",
        f"The warm parent executes {parent / floor:.2f}× the instructions of one floor environment's whole run",
        "(`python -m pytest` in the numpy venv: start-up, numpy, collection and the 20 tests); the",
        f"suite-wide parent {n['suite'] / floor:.2f}×. Neither imports numpy or a test module: the",
        "marker-declared parent makes its items from the last run's records of the test modules. A run",
        f"that imports them (`--collect-only`, which never uses the records, or the first run after an edit) executes {n['collect'] / parent:.2f}×",
        "the warm parent's instructions, before it has run anything.",
        "",
    ]
    return lines


def _profile(data: dict) -> list[str]:
    return [
        f"pyinstrument (1 ms sampling) on the marker-declared parent's main thread, {data['title']}:",
        f"{data['total']:.2f} s profiled ({data['wall']:.2f} s wall-clock, profiler included).",
        "",
        *sections.profile_tables(data),
    ]


FINDINGS = """\
### What was tried on the parent, and what is left

- Children before collection: a warm run already starts the last run's children from its plan
  at session start, before collection imports the test modules (`plan.py`). What comes before
  that point is Python, pytest's import, the plugin's import and pytest's option and plugin
  set-up: about half of the parent's instructions, on one CPU while the other has nothing to
  do. Of it, only the plugin's import is the plugin's, and most of that is `packaging`, whose
  requirement parser every child's start needs (the child's requirement checks, the
  environment's cache key) before the children can start: importing it later would only move it.
- The parent's CPU priority while children run: not adopted. With `--envmatrix-jobs=2` on 2 CPUs
  both CPUs are busy with children while the parent collects; the work is the same whichever
  runs first, so a lowered priority only moves the parent's collection behind the children, to
  the end, where it runs alone before the last replay. It helps only where CPUs would otherwise
  idle, and an unprivileged process cannot raise its priority again afterwards. With
  `--envmatrix-jobs=1` the parent collects on the CPU the single child leaves free already.
- Work per item: the run phase (the early start, reading the children's events, replaying 80
  items, the summary) costs little: the whole warm run executes fewer instructions than
  `--collect-only` alone, which imports the test modules.
- A cost found on the way, outside the plugin: pytest deletes old numbered folders under
  `$TMPDIR/pytest-of-USER` when a run that asked for a temporary folder ends, and the parent
  asks for one (its children's base temporary folder); plain pytest on these tests does not.
  On a machine where other test suites share `/tmp`, the parent deleted theirs: in one sampled
  profile (py-spy, 6 runs) 13% of the parent's samples were `shutil.rmtree` of a 13,000-file
  folder another suite had left. The benchmark now gives every run a `TMPDIR` of its own in the work
  folder, so a run deletes only its own earlier folders, as on a user's machine.
- Test modules the parent does not import (`recorded.py`): with markers, the parent used to import
  every test module to collect it, so it imported numpy and the module under test as every child
  does, and cost about one more environment's start-up and collection (its CPU time was 0.38 s
  here, markers and `--envmatrix-jobs=2` 1.59× the floor two at a time, PYTHONDONTWRITEBYTECODE
  unset, on an idle machine). Now each run keeps a record of the modules whose items were all
  matrix items, and the next run with the same command line makes their items from it while the
  files their collection read are unchanged; each child checks the record against its own
  collection. The warm parent above imports no test module and no numpy.
- The run's start and end, in the tables above: the first early children start in the session's
  own thread at session start (a worker thread used to start them, once collection let go of the
  interpreter, 10-15 ms later); a child's end wakes its reader at once (a pidfd on Linux) instead
  of at the next 10 ms poll, so the next child and the run's end no longer wait for it; a parent
  in which no test ran freezes the garbage collector at interpreter exit (only when it is the
  process's own pytest), since Python's shutdown otherwise walks every object pytest and the
  plugins imported, 30-40 ms after the last child ended; and a plain `pytest` run no longer imports
  what only a matrix run needs (the plugin's import went from about 50 ms to about 20 ms).
- What is left is Python's and pytest's own start-up, before the early children can start, on one
  CPU while the other has nothing to do: the timeline's rows up to the first child, and the
  profile's start-up row. Of the time from `pytest_configure` to the first child, the plugin's
  share is its settings, the modules a matrix run imports and the early start itself. The children
  cost no more than `python -m pytest` in the same venvs (the timeline's last line; the CPU rows
  less the parent's), and after the last child the parent's replay, summary and exit take a few
  tens of milliseconds.
"""
FINDINGS = ["", *FINDINGS.splitlines(), ""]


def write_section(output: Path, section: str) -> None:
    sections.write_section(output, section, START, END)
