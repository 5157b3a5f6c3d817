"""Running items in a child pytest inside one environment, and reading its reports as they come."""

from __future__ import annotations

import io
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ._child import EVENT_HEADER
from .envcache import BuiltEnv
from .plan import PlannedItem
from .processes import CHILD_SCRIPT, end, inside_path, supervisor_environment
from .settings import INI_NAMES

# Variables of the parent's pytest that would reconfigure the child behind our back:
# its options were already parsed by the parent and the needed ones are forwarded.
_DROPPED_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_CURRENT_TEST", "PYTHONHOME", "__PYVENV_LAUNCHER__")
_POLL_SECONDS = 0.01
# The variables that size the thread pools of OpenMP, OpenBLAS, MKL, Accelerate, numexpr and BLIS:
# those joblib's process pools set for their workers.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
    "BLIS_NUM_THREADS",
)


@dataclass
class ChildOutcome:
    """What one child process did, in the parent's report objects."""

    running: str | None = None  # the item under way when the child ended: it crashed or hung there
    partial: list = field(default_factory=list)  # reports the running item got before that
    last: tuple | None = None  # (nodeid, reports, warnings) of the last item it finished, not yet handed on
    failed: bool = False  # it sent a failed report (test or collection)
    unexpected: list[str] = field(default_factory=list)  # node ids it reported that nobody asked for
    foreign: list[str] = field(default_factory=list)  # requirements the child found unmet in its environment
    stale: dict = field(default_factory=dict)  # module made from a record → how it collects otherwise (see recorded.py)
    described: list[dict] | None = None  # a suite child's description of the items it collected
    collect_skips: list = field(default_factory=list)  # a suite child's skipped CollectReports (module-level skips)
    forked: dict = field(default_factory=dict)  # pid of a forked copy that ran pytest on → [(nodeid, outcome)]
    collect_errors: list = field(default_factory=list)  # failed CollectReports
    collect_warnings: list = field(default_factory=list)  # collection warnings of a suite child, or of modules made from records
    collected: list[str] | None = None  # node ids the child selected; None if it never got there
    exitstatus: int | None = None  # pytest's exit status; None if the child died first
    returncode: int | None = None
    timed_out: bool = False
    output: str = ""

    def death(self) -> str:
        """How the process ended, in words."""
        if self.returncode is None:
            return "did not end"
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"killed by {name} (exit code {self.returncode})"
        return f"exit code {self.returncode}"

    def output_tail(self, lines: int = 40) -> list[str]:
        """The end of what the child printed; a fatal-error dump is kept from its first line."""
        text = self.output.strip().splitlines()
        for index in range(len(text) - 1, max(-1, len(text) - 200), -1):
            # the dump may start on the line pytest's progress output left open
            start = text[index].find("Fatal Python error")
            if start >= 0:
                return [text[index][start:], *text[index + 1:]]
        return text[-lines:]


def forwarded_args(config: pytest.Config) -> list[str]:
    """The parent's options that shape how tests run and how failures read.

    ``addopts`` is emptied: the parent has applied it already, and it may name
    plugins (xdist, cov) that the environment under test does not have.
    """
    opt = config.option
    args = ["-p", "no:cacheprovider", "--rootdir", str(config.rootpath), "--color", "no"]
    if config.inipath:
        args += ["-c", str(config.inipath)]
    for override in getattr(opt, "override_ini", None) or []:
        if not override.startswith("addopts="):
            args += ["-o", override]
    # the parent applied addopts and checked required_plugins already; the environment may lack them
    args += ["-o", "addopts=", "-o", "required_plugins="]
    args += [f"--verbosity={opt.verbose}"]
    args += ["--tb", opt.tbstyle, "--capture", opt.capture, "--import-mode", opt.importmode]
    args += ["--assert", opt.assertmode]
    for warning_filter in opt.pythonwarnings or []:
        args += ["-W", warning_filter]
    for flag, on in (
        ("--showlocals", opt.showlocals),
        ("--strict-markers", getattr(opt, "strict_markers", False)),
        ("--runxfail", opt.runxfail),
        ("--full-trace", opt.fulltrace),
    ):
        if on:
            args.append(flag)
    if opt.maxfail:
        args += ["--maxfail", str(opt.maxfail)]
    return args


def collection_args(config: pytest.Config) -> list[str]:
    """The parent's options that decide what a child collecting the whole suite finds.

    Selection (``-k``, ``-m``, ``--lf``, ``--deselect``) stays with the
    parent, which applies it to the items the children describe.
    """
    opt = config.option
    args = []
    for path in getattr(opt, "ignore", None) or []:
        args.append(f"--ignore={path}")
    for pattern in getattr(opt, "ignore_glob", None) or []:
        args.append(f"--ignore-glob={pattern}")
    for pattern in getattr(opt, "doctestglob", None) or []:
        args.append(f"--doctest-glob={pattern}")
    for flag, on in (
        ("--doctest-modules", getattr(opt, "doctestmodules", False)),
        ("--pyargs", getattr(opt, "pyargs", False)),
        ("--keep-duplicates", getattr(opt, "keepduplicates", False)),
        ("--collect-in-virtualenv", getattr(opt, "collect_in_virtualenv", False)),
        ("--noconftest", getattr(opt, "noconftest", False)),
    ):
        if on:
            args.append(flag)
    if getattr(opt, "confcutdir", None):
        args.append(f"--confcutdir={opt.confcutdir}")
    return args


class _ExitWatch:
    """Waits between two reads of a child's events, and wakes the moment the child ends.

    The next child of a run starts when one ends, and the run ends when the
    last one does: a fixed sleep would add up to its length to each. Linux
    tells of a process's end through a pidfd; elsewhere this sleeps.
    """

    def __init__(self, proc: subprocess.Popen) -> None:
        self._fd: int | None = None
        try:
            self._fd = os.pidfd_open(proc.pid)
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)
        except (AttributeError, OSError):  # not Linux 5.3+, or the process was already reaped
            self.close()

    def wait(self, seconds: float) -> None:
        if self._fd is None:
            time.sleep(seconds)
        else:
            self._poll.poll(seconds * 1000)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _EventFile:
    """Reads the events a child appends, as they arrive; an event still being written waits for its end."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")
        self._buffer = bytearray()

    def read(self) -> list[dict]:
        chunk = self._file.read()
        if not chunk:
            return []
        self._buffer += chunk
        events = []
        start, header = 0, EVENT_HEADER.size
        while len(self._buffer) - start >= header:
            (size,) = EVENT_HEADER.unpack_from(self._buffer, start)
            end = start + header + size
            if end > len(self._buffer):
                break
            events.append(_PlainUnpickler(io.BytesIO(self._buffer[start + header:end])).load())
            start = end
        del self._buffer[:start]
        return events

    def close(self) -> None:
        self._file.close()


class _PlainUnpickler(pickle.Unpickler):
    """Loads plain data only: the child's events never name a class, so none is ever looked up."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"an event names {module}.{name}: the child sends plain data only")


def start_child(
    config: pytest.Config,
    env: BuiltEnv,
    items: Sequence[PlannedItem],
    workdir: Path,
    basetemp: Path,
    cwd_on_sys_path: bool,
    running: set | None = None,
    threads: int | None = None,
    recorded: dict | None = None,
) -> Child:
    """Start one child process in ``env`` on ``items``; :meth:`Child.finish` reads it to its end.

    ``recorded``: the modules among them made from a record, and what the child compares (see :mod:`.recorded`).
    """
    plan = {
        "nodeids": [item.nodeid for item in items],
        "combinations": {i.definition: {"id": i.combination_id, "values": i.values} for i in items if not i.collect_as},
        "collect_as": {i.nodeid: i.collect_as for i in items if i.collect_as},
        "recorded": recorded or {},
    }
    paths = sorted({str(config.rootpath / item.nodeid.split("::", 1)[0]) for item in items})
    return Child(config, env, plan, paths, workdir, basetemp, cwd_on_sys_path, running, threads)


class Child:
    """One child pytest in one environment, from its start to its end.

    A child given node ids (``plan["nodeids"]``) runs them at once. A child
    given a whole combination (``plan["suite"]``) collects the paths itself,
    describes what it collected (:meth:`collected`), and waits until the
    parent has selected among those items (:meth:`select`) before it runs
    them: the parent then never imports a test module.
    """

    def __init__(
        self,
        config: pytest.Config,
        env: BuiltEnv,
        plan: dict,
        paths: Sequence[str],
        workdir: Path,
        basetemp: Path,
        cwd_on_sys_path: bool,
        running: set | None = None,
        threads: int | None = None,
    ) -> None:
        """``threads``: the child's share of the CPUs (see :func:`child_environment`)."""
        self.started = time.monotonic()
        workdir.mkdir(parents=True, exist_ok=True)
        basetemp.parent.mkdir(parents=True, exist_ok=True)  # the child's pytest makes only the last level
        events_path = workdir / "events.bin"
        events_path.write_bytes(b"")
        self._selection = None
        pass_fds = ()
        if "suite" in plan:
            read_end, self._selection = os.pipe()
            pass_fds = (read_end,)
            plan = {**plan, "selection_fd": read_end}
        plan = {
            **plan,
            "events": str(events_path),
            "requirements": [requirement_check(text) for text in env.requirements],
            "cwd_on_sys_path": cwd_on_sys_path,
            # the user switched bytecode off, and the child gets a bytecode folder for its environment only
            "fresh_bytecode": gives_bytecode_folder(),
            "ini_names": list(INI_NAMES),
            "args": [*paths, *forwarded_args(config), "--basetemp", str(basetemp)],
        }
        plan_path = workdir / "plan.json"
        plan_path.write_text(json.dumps(plan), encoding="utf-8")
        self.config = config
        self.capture = config.option.capture != "no"
        self.output_path = workdir / "output.txt"
        self.outcome = ChildOutcome()
        self.running = running
        self._events = _EventFile(events_path)
        try:
            with open(self.output_path, "wb") as output:
                self.proc = subprocess.Popen(
                    [str(env.python), str(CHILD_SCRIPT), str(plan_path)],
                    cwd=str(config.invocation_params.dir),
                    env=supervisor_environment(child_environment(env, threads)),
                    stdin=subprocess.DEVNULL,
                    stdout=output if self.capture else None,
                    stderr=subprocess.STDOUT if self.capture else None,
                    # its own process group: a terminal's Ctrl-C reaches only the parent, which ends the
                    # child and everything the child started, together
                    start_new_session=True,
                    pass_fds=pass_fds,
                )
        finally:
            for fd in pass_fds:
                os.close(fd)
        if running is not None:
            running.add(self.proc)
        self._exit = _ExitWatch(self.proc)
        self._reading = _Reading(config, self.outcome, set(), None, None)

    def collected(self, timeout: float | None = None, stopping: Callable[[], bool] | None = None) -> list[dict] | None:
        """What a suite child collected (one description per item), once it has; None if it ended first.

        A child that takes longer than ``timeout`` to collect is ended, with ``timed_out`` set.
        """
        start = time.monotonic()
        while self.outcome.described is None:
            for event in self._events.read():
                self._reading.handle(event)
            if self.outcome.described is not None:
                break
            if timeout is not None and time.monotonic() - start > timeout:
                self.outcome.timed_out = True
                end(self.proc)
            if self.proc.poll() is not None or (stopping is not None and stopping()):
                for event in self._events.read():
                    self._reading.handle(event)
                return self.outcome.described
            self._exit.wait(_POLL_SECONDS)
        return self.outcome.described

    def select(self, nodeids: Sequence[str]) -> None:
        """Tell a suite child which of its items to run (the ids it described); the rest it deselects."""
        if self._selection is None:
            return
        data = json.dumps(list(nodeids)).encode("utf-8")
        try:
            with open(self._selection, "wb", closefd=True) as pipe:
                pipe.write(data)
        except OSError:
            pass  # the child is gone: finish() says how it ended
        self._selection = None

    def abandon(self) -> None:
        """End a child nobody will run: it is killed with what it started."""
        self.select([])
        if self.proc.poll() is None:
            end(self.proc)
        self._close()

    def finish(
        self,
        planned: set[str],
        on_item_done: Callable[[str, list, list], None],
        on_item_late: Callable[[str, list], None],
        timeout: float | None = None,
        stopping: Callable[[], bool] | None = None,
    ) -> ChildOutcome:
        """Read the child to its end and say how it went.

        ``on_item_done(nodeid, reports, warnings)`` is called, from the
        calling thread, once an item's reports are complete (see
        :class:`_Reading`); the last item the child finished is not handed
        on but returned in ``ChildOutcome.last``, for the caller to weigh
        against how the child ended. ``on_item_late(nodeid, reports)`` gets
        reports for an item already handed on. With ``timeout``, a child
        that spends longer than that on one item (or before its first) is
        killed together with everything it started, and ``timed_out`` is
        set. Once ``stopping()`` is true, the child is ended at once.
        """
        reading, proc, outcome = self._reading, self.proc, self.outcome
        reading.planned, reading.on_item_done, reading.on_item_late = planned, on_item_done, on_item_late
        try:
            phase_start = time.monotonic()
            while True:
                for event in self._events.read():
                    if reading.handle(event):
                        phase_start = time.monotonic()
                if proc.poll() is not None:
                    break
                if stopping is not None and stopping():
                    break
                if timeout is not None and time.monotonic() - phase_start > timeout:
                    outcome.timed_out = True
                    end(proc)
                    break
                self._exit.wait(_POLL_SECONDS)
            for event in self._events.read():
                reading.handle(event)
        finally:
            if proc.poll() is None:
                end(proc)
            self._close()
        reading.end()
        outcome.returncode = proc.returncode
        outcome.output = self.output_path.read_text(encoding="utf-8", errors="replace") if self.capture else ""
        return outcome

    def _close(self) -> None:
        if self._selection is not None:
            os.close(self._selection)
            self._selection = None
        self._events.close()
        self._exit.close()
        if self.running is not None:
            self.running.discard(self.proc)


class _Reading:
    """Turns a child's events into each item's reports.

    An item's result is every report the child sent for it, in order: a rerun
    plugin sends a logstart, setup, call, teardown and logfinish per attempt,
    subtests add call reports, and pytest records the item's warnings after
    its logfinish. So an item is complete only when another item starts, or
    when the child has ended. A report belongs to the item it names, when that
    is an item the child was given, else to the item under way (a plugin may
    rename reports); one that fits neither is noted as unexpected. Events of a
    forked copy of the child (a test that forked and whose copy returned into
    pytest) are nobody's result: they are kept apart, for the caller to report.
    """

    def __init__(self, config: pytest.Config, outcome: ChildOutcome, planned: set[str], on_item_done, on_item_late) -> None:
        self.config = config
        self.outcome = outcome
        self.planned = planned
        self.on_item_done = on_item_done
        self.on_item_late = on_item_late
        self.current: str | None = None
        self.reports: list = []
        self.warnings: list = []
        self.finished = False  # the current item's last logfinish came after its last report
        self.handed: set[str] = set()
        self.early: dict[str, list] = {}  # reports of items that had not started yet

    def handle(self, event: dict) -> bool:
        """Apply one event; True when it starts a new phase (the timeout restarts)."""
        kind = event["event"]
        if "forked" in event:
            if kind == "logreport":
                report = self._report(event["report"])
                self.outcome.forked.setdefault(event["forked"], []).append((report.nodeid, report.outcome, report.when))
            return False
        if kind == "warning":
            if event.get("when") == "collect":
                self.outcome.collect_warnings.append(_warning(event))
            elif self.current is not None:
                self.warnings.append(_warning(event))
            return False
        if kind == "logstart":
            nodeid = event["nodeid"]
            if nodeid != self.current:
                self._hand_over()
                self.current = nodeid
                self.reports = self.early.pop(nodeid, [])
            self.finished = False
            return True
        if kind == "logfinish":
            self.finished = True
            return False
        if kind == "logreport":
            self._add(self._report(event["report"]))
        elif kind == "collectreport":
            report = self._report(event["report"])
            if report.skipped:
                self.outcome.collect_skips.append(report)
            else:
                self.outcome.collect_errors.append(report)
                self.outcome.failed = True
        elif kind == "items":
            self.outcome.described = event["items"]
            return True
        elif kind == "collected":
            self.outcome.collected = event["nodeids"]
            return True
        elif kind == "sessionfinish":
            self.outcome.exitstatus = event["exitstatus"]
        elif kind == "foreign":
            self.outcome.foreign = list(event["problems"])
        elif kind == "stale":
            self.outcome.stale = dict(event["modules"])
        return False

    def _add(self, report) -> None:
        if report.failed:
            self.outcome.failed = True
        owner = report.nodeid if report.nodeid in self.planned else self.current
        if owner is None:
            self.outcome.unexpected.append(report.nodeid)
        elif owner == self.current:
            self.reports.append(report)
            self.finished = False
        elif owner in self.handed:
            self.on_item_late(owner, [report])
        else:
            self.early.setdefault(owner, []).append(report)

    def _hand_over(self) -> None:
        if self.current is not None:
            self.on_item_done(self.current, self.reports, self.warnings)
            self.handed.add(self.current)
        self.current, self.reports, self.warnings = None, [], []

    def end(self) -> None:
        """The child has ended: hand on what is complete, and say what was under way."""
        for nodeid, reports in self.early.items():
            if nodeid != self.current:
                self.on_item_done(nodeid, reports, [])
                self.handed.add(nodeid)
        if self.current is None:
            return
        if self.finished:
            self.outcome.last = (self.current, self.reports, self.warnings)
        else:
            self.outcome.running, self.outcome.partial = self.current, self.reports
        self.current, self.reports, self.warnings = None, [], []

    def _report(self, data: dict):
        return self.config.hook.pytest_report_from_serializable(config=self.config, data=data)


def _warning(event: dict) -> warnings.WarningMessage:
    """A warning the child recorded, rebuilt for the parent's warnings summary."""
    category = _warning_category(event["category_module"], event["category"])
    return warnings.WarningMessage(
        category(event["message"]), category, event["filename"], event["lineno"]
    )


def _warning_category(module: str, name: str) -> type:
    found = getattr(sys.modules.get(module), name, None)
    if isinstance(found, type) and issubclass(found, Warning):
        return found
    # a warning class of a package the parent does not have: same name, shown the same way
    return type(name, (UserWarning,), {"__module__": module})


def requirement_check(text: str) -> dict:
    """A requirement as the child checks it, parsed here so the child need not import packaging to do it."""
    requirement = Requirement(text)
    specifiers = list(requirement.specifier)
    exact = None
    if len(specifiers) == 1 and specifiers[0].operator == "==" and not specifiers[0].version.endswith("*"):
        exact = specifiers[0].version
    return {
        "text": text,
        "name": requirement.name,
        "specifier": str(requirement.specifier),
        "exact": exact,  # the version string that satisfies it as written, the common case
        "url": bool(requirement.url),
        "marker": str(requirement.marker) if requirement.marker else None,
    }


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def thread_share(children: int) -> int:
    """Threads per child so that ``children`` children at once do not ask for more than the CPUs."""
    return max(1, usable_cpus() // max(1, children))


def gives_bytecode_folder() -> bool:
    """Whether children write bytecode under the cache's ``pycache`` folder although the user switched it off.

    Only the environment's and the interpreter's sources, which never change,
    get it (the child sees to that): the project's and the tests' are compiled
    in every run, as the user's own pytest would.
    """
    return bool(os.environ.get("PYTHONDONTWRITEBYTECODE")) and not os.environ.get("PYTHONPYCACHEPREFIX")


def child_environment(env: BuiltEnv, threads: int | None = None) -> dict[str, str]:
    """The parent's environment variables, adjusted to run inside ``env``.

    Environments are filled without byte-compiling (compiling all of numpy
    costs seconds, most of it never imported). Where the user switched
    bytecode writing off (``PYTHONDONTWRITEBYTECODE``), the child writes it
    after all, but only under the cache's ``pycache`` folder
    (``PYTHONPYCACHEPREFIX``): the first run compiles what it imports, later
    runs start fast, and the user's tree stays free of ``__pycache__``. The
    folder is shared by all environments, so the standard library's bytecode
    is there once (the child links it in, see ``_child.py``).

    With ``threads``, each of :data:`THREAD_VARIABLES` that the user did not
    set is set to it: OpenBLAS and OpenMP otherwise start one thread per CPU
    in every child, and children running side by side then fight over the
    CPUs (two numpy environments at once ran a BLAS-heavy suite at half
    speed). A variable the user set is passed unchanged.

    ``PATH`` starts with the environment's scripts and leaves out those of
    the virtualenv running the parent (see :func:`processes.inside_path`):
    a test that runs ``ninja`` or a console script must find the
    environment's, or none.
    """
    child_env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    child_env["VIRTUAL_ENV"] = str(env.path)
    child_env["PATH"] = inside_path(str(env.python.parent), child_env.get("PATH", ""))
    if gives_bytecode_folder():
        child_env["PYTHONPYCACHEPREFIX"] = str(env.pycache_prefix)
    child_env.pop("PYTHONDONTWRITEBYTECODE", None)
    if threads is not None:
        for name in THREAD_VARIABLES:
            if not child_env.get(name):
                child_env[name] = str(threads)
    return child_env

