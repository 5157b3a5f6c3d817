"""Finding the interpreter a combination asks for.

Discovery is virtualenv's own (PATH, version specifiers, the Windows
registry); we only add pyenv's installed versions as candidates, because a
pyenv shim runs only the versions that are active and virtualenv would not
look past it.
"""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass
from pathlib import Path


class InterpreterNotFound(LookupError):
    """No interpreter on this machine satisfies the request."""


@dataclass(frozen=True)
class Interpreter:
    executable: str
    version: str  # full version, e.g. "3.12.1"
    implementation: str

    @property
    def identity(self) -> str:
        """What the cache key needs: a different binary or version is a different environment."""
        return f"{self.implementation} {self.version} {self.executable}"


def current_interpreter() -> Interpreter:
    """The interpreter running pytest; known without starting a process."""
    # inside a venv, the base interpreter is what new environments are made from
    executable = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    version = ".".join(map(str, sys.version_info[:3]))
    return Interpreter(executable, version, sys.implementation.name)


def _pyenv_candidates(request: str) -> list[str]:
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = []
    for exe in sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python3"))):
        version_dir = Path(exe).parent.parent.name
        if version_dir == request or version_dir.startswith(request + "."):
            found.append(exe)
    return found


class InterpreterFinder:
    """Resolves interpreter requests once per session; discovery starts processes."""

    def __init__(self) -> None:
        self._found: dict[str | None, Interpreter | InterpreterNotFound] = {}

    def find(self, request: str | None) -> Interpreter:
        if request not in self._found:
            try:
                self._found[request] = self._discover(request)
            except InterpreterNotFound as exc:
                self._found[request] = exc
        result = self._found[request]
        if isinstance(result, InterpreterNotFound):
            raise result
        return result

    @staticmethod
    def _discover(request: str | None) -> Interpreter:
        if request is None:
            return current_interpreter()
        from virtualenv.discovery.builtin import get_interpreter

        first = [sys.executable, *_pyenv_candidates(request)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUALENV_")}
        info = get_interpreter(request, first, env=env)
        if info is None:
            raise InterpreterNotFound(f"python {request} was not found on this machine")
        version = ".".join(map(str, info.version_info[:3]))
        executable = os.path.realpath(info.system_executable or info.executable)
        return Interpreter(executable, version, info.implementation.lower())
