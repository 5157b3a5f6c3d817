"""Running one environment's items in a child pytest and reading back its reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .envcache import BuiltEnv

CHILD_SCRIPT = Path(__file__).with_name("_child.py")

# Variables of the parent's pytest that would reconfigure the child behind our back:
# its options were already parsed by the parent and the needed ones are forwarded.
_DROPPED_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_CURRENT_TEST", "PYTHONHOME", "__PYVENV_LAUNCHER__")


@dataclass(frozen=True)
class PlannedItem:
    nodeid: str
    definition: str  # node id of the test function, without the parametrization
    combination_id: str
    values: dict


@dataclass
class ChildOutcome:
    """What one child run produced, in the parent's report objects."""

    reports: dict[str, list] = field(default_factory=dict)  # nodeid → TestReports, in order
    collect_errors: list = field(default_factory=list)  # failed CollectReports
    collected: list[str] | None = None  # node ids the child selected, None if it never got there
    exitstatus: int | None = None  # pytest's exit status, None if the child died first
    returncode: int | None = None
    output: str = ""


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
    args += ["-o", "addopts="]
    args += [f"--verbosity={config.get_verbosity()}" if hasattr(config, "get_verbosity") else f"--verbosity={opt.verbose}"]
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


def run_child(
    config: pytest.Config,
    env: BuiltEnv,
    items: Sequence[PlannedItem],
    workdir: Path,
    basetemp: Path,
    cwd_on_sys_path: bool,
    running: set | None = None,
) -> ChildOutcome:
    """Run ``items`` in one child process in ``env`` and collect every report it sent."""
    workdir.mkdir(parents=True, exist_ok=True)
    basetemp.parent.mkdir(parents=True, exist_ok=True)  # the child's pytest makes only the last level
    events = workdir / "events.jsonl"
    events.write_bytes(b"")
    paths = sorted({str(config.rootpath / item.nodeid.split("::", 1)[0]) for item in items})
    plan = {
        "nodeids": [item.nodeid for item in items],
        "combinations": {i.definition: {"id": i.combination_id, "values": i.values} for i in items},
        "events": str(events),
        "cwd_on_sys_path": cwd_on_sys_path,
        "args": [*paths, *forwarded_args(config), "--basetemp", str(basetemp)],
    }
    plan_path = workdir / "plan.json"
    plan_path.write_text(json.dumps(plan), encoding="utf-8")

    child_env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    child_env["VIRTUAL_ENV"] = str(env.path)
    child_env["PATH"] = str(env.python.parent) + os.pathsep + child_env.get("PATH", "")

    capture = config.option.capture != "no"
    output_path = workdir / "output.txt"
    with open(output_path, "wb") as output:
        proc = subprocess.Popen(
            [str(env.python), str(CHILD_SCRIPT), str(plan_path)],
            cwd=str(config.invocation_params.dir),
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=output if capture else None,
            stderr=subprocess.STDOUT if capture else None,
        )
        if running is not None:
            running.add(proc)  # so the session can end it when the run stops early
        try:
            proc.wait()
        finally:
            if running is not None:
                running.discard(proc)
    outcome = read_events(config, events)
    outcome.returncode = proc.returncode
    outcome.output = output_path.read_text(encoding="utf-8", errors="replace") if capture else ""
    return outcome


def read_events(config: pytest.Config, events: Path) -> ChildOutcome:
    outcome = ChildOutcome()
    with open(events, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # the child died mid-write; what came before is intact
            event = json.loads(line)
            kind = event["event"]
            if kind == "logreport":
                data = event["report"]
                if isinstance(data.get("longrepr"), list):
                    # a skip's (path, line, reason): JSON made the tuple a list, pytest wants the tuple
                    data["longrepr"] = tuple(data["longrepr"])
                report = config.hook.pytest_report_from_serializable(config=config, data=data)
                outcome.reports.setdefault(report.nodeid, []).append(report)
            elif kind == "collectreport":
                report = config.hook.pytest_report_from_serializable(config=config, data=event["report"])
                outcome.collect_errors.append(report)
            elif kind == "collected":
                outcome.collected = event["nodeids"]
            elif kind == "sessionfinish":
                outcome.exitstatus = event["exitstatus"]
    return outcome


def python_sees_cwd() -> bool:
    """Whether this pytest runs with the current directory importable (``python -m pytest``)."""
    cwd = os.getcwd()
    return any(os.path.abspath(p or os.curdir) == cwd for p in sys.path[:1])
