"""Notice a path option written as two words, which silently changes pytest's rootdir and ini file.

pytest chooses the rootdir and the ini file before it knows plugin options,
from the words of the command line that look like paths. In
``--envmatrix-cache-dir /tmp/c`` the path is such a word: the rootdir becomes
the common parent of ``/tmp/c`` and the project, the project's ini file is
not read, ``envmatrix_project = auto`` stops finding the project and
``envmatrix_deps`` vanish, without an error. The option itself still gets its
value. The run says so at its top, with the fix (``=``), when it happened:
the value was a separate word and the ini file (or, without one, the rootdir)
is not the one pytest finds from the current directory.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PATH_OPTIONS = ("--envmatrix-cache-dir", "--envmatrix-find-links")
# pytest's own order, within one directory
_CONFIG_FILES = ("pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
_SECTIONS = {
    "pyproject.toml": re.compile(r"^\[tool\.pytest(\.ini_options)?\]", re.MULTILINE),
    "tox.ini": re.compile(r"^\[pytest\]", re.MULTILINE),
    "setup.cfg": re.compile(r"^\[tool:pytest\]", re.MULTILINE),
}


def two_word_paths(args) -> list[tuple[str, str]]:
    """(option, value) for each path option whose value is the next word, not after ``=``."""
    words = [str(arg) for arg in args]
    return [(option, value) for option, value in zip(words, words[1:]) if option in PATH_OPTIONS and not value.startswith("-")]


def project_config(start: Path) -> Path | None:
    """The ini file pytest finds from ``start`` when no path is given: the nearest one configuring pytest."""
    for folder in (start, *start.parents):
        for name in _CONFIG_FILES:
            path = folder / name
            if path.is_file() and _configures_pytest(path):
                return path
    return None


def _configures_pytest(path: Path) -> bool:
    section = _SECTIONS.get(path.name)
    if section is None:
        return True
    try:
        return bool(section.search(path.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return False


def _project_rootdir(start: Path) -> Path:
    """Without an ini file, pytest's rootdir is the nearest directory with a setup.py, else the current one."""
    return next((folder for folder in (start, *start.parents) if (folder / "setup.py").is_file()), start)


def warning_lines(config: pytest.Config) -> list[str]:
    """The notice for the top of the run; empty when no path option moved the rootdir or ini file."""
    found = two_word_paths(config.invocation_params.args)
    if not found:
        return []
    here = Path(config.invocation_params.dir)
    expected = project_config(here)
    if expected is not None:
        if config.inipath is not None and Path(config.inipath).resolve() == expected.resolve():
            return []
        wanted = str(expected)
    else:
        project = _project_rootdir(here)
        if Path(config.rootpath).resolve() == project.resolve():
            return []
        wanted = f"rootdir {project}"
    now = f"rootdir {config.rootpath}, ini file {config.inipath or 'none'}"
    lines = [
        f"envmatrix: {option} {value} is written as two words, so pytest took {value} for a test path when it chose "
        f"the rootdir and ini file: {now}, not {wanted}; write {option}={value}"
        for option, value in found
    ]
    lines.append("envmatrix: the project's ini options (envmatrix_deps, envmatrix_project, ...) are not in force in this run")
    return lines
