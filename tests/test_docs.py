"""The messages docs/reference.md quotes are the ones the code gives, so the two cannot drift apart.

Each table of messages is read from the document itself: a new row, or a
changed message in the code, fails here until the other side agrees. A
quoted message may use ``<...>`` and ``...`` for the parts that vary.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_envmatrix import settings
from pytest_envmatrix.matrix import MarkerError, build_matrix, check_pytest_runs

REPO = Path(__file__).resolve().parent.parent
REFERENCE = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")
BAD_INPUT = (REPO / "docs" / "bad-input.md").read_text(encoding="utf-8")
SOURCE = "\n".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "pytest_envmatrix").glob("*.py")))


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + len(heading) + 2)
    return text[start : end if end != -1 else None]


def table_rows(text: str) -> list[list[str]]:
    """The cells of each row of the markdown tables in ``text`` (header and rule rows left out)."""
    lines = text.splitlines()
    rows = []
    for line, following in zip(lines, lines[1:] + [""]):
        if not line.startswith("| ") or _is_rule(line) or _is_rule(following):
            continue
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def _is_rule(line: str) -> bool:
    return line.startswith("|---") or line.startswith("| ---")


def quoted(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def as_pattern(message: str) -> re.Pattern:
    """A documented message as a regular expression: ``<...>`` and ``...`` stand for anything."""
    parts = re.split(r"(<[^<>]+>|\.\.\.)", message)
    return re.compile("".join(".*" if i % 2 else re.escape(part) for i, part in enumerate(parts)), re.DOTALL)


# ----------------------------------------------------------------------------- marker errors

MARKER_ROWS = [row for row in table_rows(section(REFERENCE, "## Marker errors")) if row[0].startswith("`envmatrix(")]


def envmatrix(*args, **kwargs):
    return args, kwargs


@pytest.mark.parametrize("row", MARKER_ROWS, ids=[quoted(row[0])[0][:60] for row in MARKER_ROWS])
def test_each_documented_marker_error_is_the_message_the_code_gives(row):
    marker = quoted(row[0])[0].replace("https://...", "https://example.org/numpy.whl").replace("[...]", "['1.0']")
    message = quoted(row[1])[0]
    args, kwargs = eval(marker, {"envmatrix": envmatrix})  # the document's own example
    with pytest.raises(MarkerError) as raised:
        matrix = build_matrix([(args, kwargs)], where="tests/test_x.py::test_f")
        combinations = matrix.combinations(())
        check_pytest_runs(combinations, "9.2.0", ">=3.10", "tests/test_x.py::test_f")
    assert as_pattern("tests/test_x.py::test_f: " + message).fullmatch(str(raised.value)), str(raised.value)


def test_the_marker_error_table_has_its_rows():
    assert len(MARKER_ROWS) >= 30  # the parsing above found the table


# ----------------------------------------------------------------------------- configuration errors

#: How to provoke each documented configuration error: ini lines and command-line arguments.
CONFIGURATION = {
    "ini option envmatrix_deps: 'hypothesis>>6' is not a valid requirement (<parser message>)": (["envmatrix_deps = hypothesis>>6"], []),
    "ini option envmatrix_jobs: 'many' is not a whole number": (["envmatrix_jobs = many"], []),
    "ini option envmatrix_jobs: 0 must be at least 1": (["envmatrix_jobs = 0"], []),
    "--envmatrix-jobs: 0 must be at least 1": ([], ["--envmatrix-jobs=0"]),
    "ini option envmatrix_timeout: 'soon' is not a number of seconds": (["envmatrix_timeout = soon"], []),
    "ini option envmatrix_timeout: 0 must be at least 0.001": (["envmatrix_timeout = 0"], []),
    "--envmatrix-timeout: 0.0 must be at least 0.001": ([], ["--envmatrix-timeout=0"]),
    "ini option envmatrix_require_python: invalid truth value 'maybe' (write true or false)": (["envmatrix_require_python = maybe"], []),
    "ini option envmatrix_max_age_days: 'x' is not a number of days": (["envmatrix_max_age_days = x"], ["--envmatrix-prune"]),
    "ini option envmatrix_max_age_days: -1 must be at least 0": (["envmatrix_max_age_days = -1"], ["--envmatrix-prune"]),
    "ini option envmatrix_link_mode: 'reflink' is not one of copy, hardlink, clone, symlink": (["envmatrix_link_mode = reflink"], []),
    "ini option envmatrix_project_build: 'fast' is not one of auto, editable, compiled": (["envmatrix_project_build = fast"], []),
    "ini option envmatrix_package_index: 'torch https://x' is not a package index: write name = URL or folder (e.g. torch = https://download.pytorch.org/whl/cpu)": (
        ["envmatrix_package_index = torch https://x"], [],
    ),
    "ini option envmatrix_package_index: package 'Torch' is given twice": (
        ["envmatrix_package_index =", "    torch = https://a", "    Torch = https://b"], [],
    ),
    "--envmatrix-package-index: 'not a name!' is not a valid distribution name": ([], ["--envmatrix-package-index=not a name!=https://x"]),
    "--envmatrix-torch-backend: 'cuda' is not a PyTorch backend uv knows (cpu, cu126, rocm6.3, xpu, auto, ...)": ([], ["--envmatrix-torch-backend=cuda"]),
    "--envmatrix-shared-package: 'not a name!' is not a valid distribution name": ([], ["--envmatrix-shared-package=not a name!"]),
    "envmatrix: a package index of its own (torch) needs the uv installer: pip has no per-package index, and its --extra-index-url would let any package come from either index (dependency confusion); install uv (pip install 'pytest-envmatrix[uv]'), or take every package from that index with --envmatrix-index-url": (
        [], ["--envmatrix-list", "--envmatrix-installer=pip", "--envmatrix-package-index=torch=https://download.pytorch.org/whl/cpu"],
    ),
    "envmatrix: a torch backend needs the uv installer (pip has no --torch-backend); install uv (pip install 'pytest-envmatrix[uv]'), or take every package from PyTorch's index for that backend with --envmatrix-index-url (https://download.pytorch.org/whl/cpu, say)": (
        [], ["--envmatrix-list", "--envmatrix-installer=pip", "--envmatrix-torch-backend=cpu"],
    ),
    "envmatrix: --envmatrix-no-index (envmatrix_no_index) switches off every index, the package index of torch too; drop it, or use --envmatrix-find-links for a folder of wheels": (
        [], ["--envmatrix-list", "--envmatrix-no-index", "--envmatrix-package-index=torch=https://download.pytorch.org/whl/cpu"],
    ),
    "envmatrix installer must be auto, uv or pip, not 'fast'": (["envmatrix_installer = fast"], ["--envmatrix-list"]),
    "envmatrix_project = sub: /abs/path/sub has no pyproject.toml with a [project] table and no setup.py": (["envmatrix_project = sub"], ["--envmatrix-list"]),
    "--envmatrix-axis: 'numpy' is not an axis: write name=version,version (e.g. numpy=1.26.4,2.1.3)": ([], ["--envmatrix-axis=numpy"]),
    "--envmatrix-axis: axis 'numpy' is given twice": ([], ["--envmatrix-axis=numpy=1.0", "--envmatrix-axis=numpy=2.0"]),
    "--envmatrix-upgrade: 'numpy>=2' is neither a package name nor name==version (e.g. numpy or numpy==2.2.6)": (
        [], ["--envmatrix-upgrade=numpy>=2"],
    ),
    "--envmatrix-upgrade: 'numpy' is given twice": ([], ["--envmatrix-upgrade=numpy==2.0", "--envmatrix-upgrade=numpy"]),
    "--envmatrix-upgrade runs the tests in two environments of its own: it does not combine with --envmatrix-axis": (
        [], ["--envmatrix-upgrade=numpy", "--envmatrix-axis=numpy=1.0"],
    ),
    "ini option envmatrix_versions_ttl: 'soon' is not a number of hours": (["envmatrix_versions_ttl = soon"], []),
    "--envmatrix-bisect: 'not a name!' is not a valid distribution name": ([], ["--envmatrix-bisect=not a name!"]),
    "--envmatrix-bad: 'newest' is not a version (e.g. '1.26.4') nor current, latest or oldest": (
        [], ["--envmatrix-bisect=emx-x", "--envmatrix-good=1.0", "--envmatrix-bad=newest"],
    ),
    "--envmatrix-good: could not resolve <package> 'current': that is the version installed where pytest runs (<prefix>), "
    "and <package> is not installed there": ([], ["--envmatrix-bisect=emx-not-installed-here"]),
    "--envmatrix-bisect emx-x: the good version (2.0) must be older than the bad one (1.0)": (
        [], ["--envmatrix-bisect=emx-x", "--envmatrix-good=2.0", "--envmatrix-bad=1.0"],
    ),
    "--envmatrix-shard: 'two' is not K/N (this job's shard K of N shards, e.g. 2/4)": ([], ["--envmatrix-shard=two"]),
    "--envmatrix-shard: '3/2': K must be between 1 and N (2)": ([], ["--envmatrix-shard=3/2"]),
    "--envmatrix-shard: '1/0': N must be at least 1": ([], ["--envmatrix-shard=1/0"]),
    "--envmatrix-store-durations: name the file with --envmatrix-durations=FILE": ([], ["--envmatrix-store-durations"]),
    "--envmatrix-durations: <path> does not exist; write it with --envmatrix-store-durations (one run of every shard)": (
        [], ["--envmatrix-durations=missing.json"],
    ),
    "durations file <path>: not JSON (<parser message>)": ([], ["--envmatrix-durations=sub/bad.json"]),
    'durations file <path>: not a file --envmatrix-store-durations wrote (expected {"format": 1, "items": {...}}); write it again with --envmatrix-store-durations': (
        [], ["--envmatrix-durations=sub/list.json"],
    ),
    'durations file <path>: the entry for \'t.py::a\' is not {"seconds": <number>, "combination": <id>}': (
        [], ["--envmatrix-durations=sub/entry.json"],
    ),
    "--envmatrix-json: only with --envmatrix-list (pytest --envmatrix-list --envmatrix-json)": ([], ["--envmatrix-json"]),
}
#: Files the configurations above read (durations files), written before each run.
CONFIGURATION_FILES = {"sub/bad.json": "{", "sub/list.json": "[]", "sub/entry.json": '{"format": 1, "items": {"t.py::a": 3}}'}
#: Messages that need a machine without uv to provoke: checked against the source instead.
CONFIGURATION_IN_SOURCE = {
    "envmatrix installer 'uv' was asked for, but uv is neither importable nor on PATH (pip install 'pytest-envmatrix[uv]')",
    "--envmatrix-upgrade resolves the environment after the upgrade with uv, which is neither importable nor on PATH (pip install 'pytest-envmatrix[uv]')",
}


def configuration_messages() -> list[str]:
    rows = table_rows(section(REFERENCE, "## Configuration errors"))
    return [quoted(row[1])[0] for row in rows]


def test_every_documented_configuration_error_is_provoked_here():
    assert set(configuration_messages()) == set(CONFIGURATION) | CONFIGURATION_IN_SOURCE


@pytest.mark.parametrize("message", sorted(CONFIGURATION))
def test_each_documented_configuration_error_is_the_message_the_code_gives(pytester, tmp_path, message):
    ini, args = CONFIGURATION[message]
    pytester.makeini("[pytest]\n" + "\n".join(ini) + "\n")
    pytester.mkdir("sub")
    for name, text in CONFIGURATION_FILES.items():
        (pytester.path / name).write_text(text)
    result = pytester.runpytest_subprocess(f"--envmatrix-cache-dir={tmp_path / 'cache'}", *args, timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    pattern = as_pattern("ERROR: " + message.replace("/abs/path/sub", "<path>"))
    assert pattern.match(result.stderr.str().strip()), result.stderr.str()


@pytest.mark.parametrize("message", sorted(CONFIGURATION_IN_SOURCE))
def test_configuration_errors_not_provoked_here_are_in_the_source(message):
    assert_in_source(message)


# ----------------------------------------------------------------------------- messages in test results

def assert_in_source(message: str) -> None:
    """Each literal stretch of ``message`` (between its placeholders) is written in the package's source.

    A message the code puts together from parts (a prefix, then an
    exception's text) is matched piece by piece: each stretch is covered by
    the longest pieces the source has, none shorter than 8 characters but
    the last. A reworded message, on either side, breaks a piece.
    """
    placeholders = r"<[^<>]+>|\.\.\.|\b[NMX]\b|SIGNAME|1800|\bDoctestItem\b|\bSpecItem\b|\buv\b"
    for part in re.split(placeholders, message):
        rest = part.strip(" :,()")
        while rest:
            size = len(rest)
            while size and rest[:size] not in SOURCE:
                size -= 1
            assert size >= min(8, len(rest)), f"{rest!r} (of {message!r}) is not in pytest_envmatrix/"
            rest = rest[size:].strip(" :,()")


def result_messages() -> list[str]:
    text = section(REFERENCE, "## Messages in test results")
    return [quoted(row[1])[0] if not row[0].startswith("`") else quoted(row[0])[0] for row in table_rows(text)]


@pytest.mark.parametrize("message", result_messages())
def test_each_documented_result_message_is_written_in_the_source(message):
    assert_in_source(message)


def test_the_result_message_tables_have_their_rows():
    assert len(result_messages()) >= 20


# ----------------------------------------------------------------------------- options and help

def documented_options() -> set[str]:
    rows = table_rows(section(REFERENCE, "## Command-line options"))
    return {re.match(r"--[a-z-]+", quoted(row[0])[0]).group(0) for row in rows}


def documented_ini_options() -> set[str]:
    rows = table_rows(section(REFERENCE, "## Ini options"))
    return {quoted(row[0])[0] for row in rows}


def test_every_option_and_ini_option_is_documented_and_every_documented_one_exists(pytester):
    result = pytester.runpytest("--help")
    options = set(re.findall(r"^\s+(--envmatrix[a-z-]*)", result.stdout.str(), re.MULTILINE))
    ini = set(re.findall(r"^\s+(envmatrix_[a-z_]+)", result.stdout.str(), re.MULTILINE))
    assert options == documented_options()
    assert ini == documented_ini_options()


def test_help_says_what_jobs_means_and_names_the_cache_variable(pytester):
    help_text = " ".join(pytester.runpytest("--help").stdout.str().split())
    # the help says what the reference says: N children at once, and N builds besides them
    assert settings.HELP_JOBS in help_text
    assert "how many child pytests run at once, and how many environments are built at once besides them" in help_text
    assert "How many children run at once, and how many environments are built at once besides them" in REFERENCE
    cache_help = help_text.split("--envmatrix-cache-dir=DIR", 1)[1].split("--envmatrix-", 1)[0]
    assert settings.CACHE_DIR_ENV in cache_help
