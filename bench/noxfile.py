"""The benchmark's nox configuration: bench/project against four numpy versions.

Two session families with the same steps: ``tests_virtualenv`` (virtualenv +
pip) and ``tests_uv`` (uv venv + uv pip). run.py gives each its own
``--envdir`` and, on warm runs, ``-R`` (reuse the environments, skip installs).
"""

import os
from pathlib import Path

import nox

PROJECT = Path(__file__).parent / "project"
NUMPY_VERSIONS = ["1.26.4", "2.0.2", "2.1.3", "2.2.6"]
# run.py pins pytest to the version the other tools get; plain `nox` takes the newest
PYTEST = os.environ.get("BENCH_PYTEST", "pytest")

nox.options.default_venv_backend = "virtualenv"
nox.options.error_on_missing_interpreters = True


def _install_and_test(session: nox.Session, numpy: str) -> None:
    """The steps every tool performs: the project editable, pytest, the numpy pin; then the tests."""
    session.install("-e", str(PROJECT), PYTEST, f"numpy=={numpy}")
    session.chdir(PROJECT)
    session.run("pytest", "-q", "-p", "no:cacheprovider", "tests", *session.posargs)


@nox.session(venv_backend="virtualenv")
@nox.parametrize("numpy", NUMPY_VERSIONS)
def tests_virtualenv(session: nox.Session, numpy: str) -> None:
    _install_and_test(session, numpy)


@nox.session(venv_backend="uv")
@nox.parametrize("numpy", NUMPY_VERSIONS)
def tests_uv(session: nox.Session, numpy: str) -> None:
    _install_and_test(session, numpy)
