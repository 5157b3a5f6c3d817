"""Starting and ending the processes a run starts (children, installers), with everything they start.

On Linux every such process runs under a supervisor (``_child.py``'s
``_supervise``): the process started here forks once, stays behind as the
subreaper of all its descendants, and kills them all when the work ends, when
asked to (SIGTERM), or when this process dies, even by SIGKILL. So a
grandchild that left the process group (``setsid``) or ignores SIGTERM is
ended too. Elsewhere (macOS, Windows) a process is ended with its process
group only, and nothing notices the death of this process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

CHILD_SCRIPT = Path(__file__).with_name("_child.py")
PARENT_PID_VARIABLE = "ENVMATRIX_PARENT_PID"  # read (and removed) by the supervisor
SUPERVISED = sys.platform.startswith("linux")
END_SECONDS = 2.0  # how long a supervisor gets to end everything before its process group is SIGKILLed


def python_sees_cwd() -> bool:
    """Whether this pytest runs with the current directory importable (``python -m pytest``)."""
    cwd = os.getcwd()
    return any(os.path.abspath(p or os.curdir) == cwd for p in sys.path[:1])


# Read when the plugin is imported, as Python started: pytest prepends the rootdir and the
# conftest.py folders to sys.path later, and the matrix run's modules are imported after that.
CWD_ON_SYS_PATH = python_sees_cwd()


def supervisor_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus what the supervisor needs: which process it watches."""
    return {**env, PARENT_PID_VARIABLE: str(os.getpid())} if SUPERVISED else dict(env)


def supervised_command(command: Sequence[str]) -> list[str]:
    """``command``, run under a supervisor (this interpreter with ``-I -S``: it starts in milliseconds)."""
    if not SUPERVISED or not sys.executable:
        return list(command)
    return [sys.executable, "-I", "-S", str(CHILD_SCRIPT), "--supervise", "--", *command]


def kill_group(proc: subprocess.Popen) -> None:
    """Ask ``proc`` to end with everything it started; returns at once (see :func:`end`)."""
    if proc.returncode is not None:
        return
    try:
        if sys.platform == "win32":
            proc.kill()
        elif SUPERVISED:
            os.kill(proc.pid, signal.SIGTERM)  # the supervisor: it kills every descendant, then itself
        else:
            os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def end(proc: subprocess.Popen, seconds: float = END_SECONDS) -> None:
    """End ``proc`` with everything it started, and reap it; within ``seconds`` and a little more."""
    kill_group(proc)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass
    if sys.platform != "win32":
        # whatever is left of its process group; the group's id stays reserved until ``proc`` is reaped
        try:
            if proc.returncode is None:
                os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()


# folders where a Python installed by the system keeps its scripts beside every other tool of the
# machine (the compiler among them): these stay on PATH, the scripts in them are the system's
_SHARED_BIN = {"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/opt/homebrew/bin"}


def outer_scripts_dirs() -> set[str]:
    """The script folders of the Python this pytest runs in, and of the virtualenv the shell activated.

    Their tools (``ninja``, ``cython``, ``meson``, a project's own commands)
    belong to the outer environment: a build in an environment, or a test in
    a child, that found them there would not be testing what the environment
    holds. That is so of a virtualenv's folder and of a Python's own
    (pyenv's, conda's, python.org's), not of a folder the system shares with
    every other tool.
    """
    found = set()
    scripts = sysconfig.get_path("scripts")
    if sys.prefix != sys.base_prefix or os.path.realpath(scripts) not in {os.path.realpath(d) for d in _SHARED_BIN}:
        found.add(scripts)
    active = os.environ.get("VIRTUAL_ENV")
    if active:
        found.add(os.path.join(active, "Scripts" if os.name == "nt" else "bin"))
    return {os.path.realpath(d) for d in found if d}


def inside_path(env_scripts: str, path: str) -> str:
    """``PATH`` for a process working in an environment: its scripts first, the outer environment's left out."""
    outer = outer_scripts_dirs() - {os.path.realpath(env_scripts)}
    kept = [entry for entry in path.split(os.pathsep) if entry and os.path.realpath(entry) not in outer]
    return os.pathsep.join([env_scripts, *kept])
