"""Shared fixtures: wheels of made-up packages, a hermetic installer, a matrix runner.

Every environment these tests build installs from local folders only
(``--envmatrix-find-links`` + ``--envmatrix-no-index``), with the machine's
own installer settings (pip.conf, ``PIP_*``, ``UV_*``) switched off: see
:func:`hermetic_installer`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from filelock import FileLock

pytest_plugins = ["pytester"]

#: Made-up packages, each version behaving differently: ``answer()`` returns the major version.
DEMO_VERSIONS = ("1.0", "2.0", "3.0")


def build_wheel(
    dest: Path, dist: str, version: str, files: dict[str, str], requires=(), requires_python: str | None = None, tag: str = "py3-none-any"
) -> Path:
    """Write a minimal, valid wheel (pure Python unless ``tag`` says otherwise); no build backend needed."""
    normalized = dist.replace("-", "_")
    info = f"{normalized}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
    if requires_python:
        metadata += f"Requires-Python: {requires_python}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    contents = dict(files)
    contents[f"{info}/METADATA"] = metadata
    contents[f"{info}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: envmatrix-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
    record = []
    for path, text in contents.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = "\n".join(record) + "\n"
    wheel = dest / f"{normalized}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in contents.items():
            zf.writestr(path, text)
    return wheel


@pytest.fixture(scope="session")
def demo_wheels(tmp_path_factory) -> Path:
    """emx-demo 1.0/2.0/3.0, emx-extra 1.0, emx-needs-old 1.0 (requires emx-demo<2)."""
    dest = tmp_path_factory.mktemp("demo-wheels")
    for version in DEMO_VERSIONS:
        major = version.split(".")[0]
        build_wheel(
            dest,
            "emx-demo",
            version,
            {"emx_demo/__init__.py": f"__version__ = {version!r}\n\ndef answer():\n    return {major}\n"},
        )
    build_wheel(dest, "emx-extra", "1.0", {"emx_extra/__init__.py": "VALUE = 'extra'\n"})
    build_wheel(dest, "emx-needs-old", "1.0", {"emx_needs_old/__init__.py": ""}, requires=["emx-demo<2"])
    return dest


def _wheelhouse_dir(config: pytest.Config) -> Path:
    """Kept across runs in pytest's cache; in a temporary directory when the cache is off."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return Path(tempfile.mkdtemp(prefix="envmatrix-base-wheels-"))
    return Path(cache.mkdir("envmatrix-base-wheels"))


@pytest.fixture(scope="session")
def base_wheels(request) -> Path:
    """pytest (at this process's version) and its dependencies, plus flit_core, as local wheels.

    Downloaded once (by pip, with the machine's own index settings) into the
    pytest cache of this repository; every environment built by the tests
    then installs offline from here.
    """
    dest = _wheelhouse_dir(request.config)
    stamp = dest / f"complete-{pytest.__version__}-v4.json"
    with FileLock(str(dest) + ".lock"):
        if not stamp.exists():
            # pip evaluates markers for the running interpreter only, so the backports that
            # older interpreters need are named explicitly, for each interpreter the tests use
            for python_version in _supported(("3.9", "3.10", "3.11", "3.12", "3.13")):
                subprocess.run(
                    [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                     "--only-binary=:all:", "--python-version", python_version, "--dest", str(dest),
                     f"pytest=={pytest.__version__}", "flit_core>=3.4,<4", "exceptiongroup>=1",
                     "tomli>=1", "typing_extensions>=4.6"],
                    check=True,
                    timeout=600,
                )
            stamp.write_text(json.dumps(sorted(p.name for p in dest.glob("*.whl"))))
    return dest


def _supported(python_versions: tuple[str, ...]) -> list[str]:
    """The Python versions this pytest supports (pytest 9 needs 3.10, pytest 8 runs on 3.9)."""
    from importlib.metadata import metadata

    from packaging.specifiers import SpecifierSet

    requires = SpecifierSet(metadata("pytest").get("Requires-Python") or "")
    return [version for version in python_versions if requires.contains(f"{version}.99")]


@pytest.fixture
def hermetic_installer(monkeypatch):
    """Switch off the machine's installer configuration: these tests say exactly where packages come from."""
    for name in list(os.environ):
        if (name.startswith("PIP_") or name.startswith("UV_")) and name != "UV_CACHE_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("UV_NO_CONFIG", "1")


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch):
    """A CI job's own step summary is not for the runs these tests start: each test that wants one sets it."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One environment cache for the whole test session, so equal environments are built once."""
    return tmp_path_factory.mktemp("envcache")


class MatrixRunner:
    """Runs pytest with --envmatrix against local wheels only."""

    def __init__(self, pytester: pytest.Pytester, cache: Path, wheel_dirs: list[Path]) -> None:
        self.pytester = pytester
        self.cache = cache
        self.wheel_dirs = wheel_dirs

    def options(self, cache: Path | None = None) -> list[str]:
        opts = ["--envmatrix", f"--envmatrix-cache-dir={cache or self.cache}", "--envmatrix-no-index"]
        opts += [f"--envmatrix-find-links={d}" for d in self.wheel_dirs]
        return opts

    def run(self, *args: str, cache: Path | None = None, subprocess: bool = False) -> pytest.RunResult:
        full = [*self.options(cache), *args]
        if subprocess:
            return self.pytester.runpytest_subprocess(*full, timeout=600)
        return self.pytester.runpytest(*full)

    def envs(self, cache: Path | None = None) -> dict[str, dict]:
        """The completion marks in a cache: env dir name → mark."""
        root = Path(cache or self.cache) / "envs"
        return {p.parent.name: json.loads(p.read_text()) for p in root.glob("*/envmatrix.json")}


@pytest.fixture
def matrix(pytester, shared_cache, demo_wheels, base_wheels, hermetic_installer) -> MatrixRunner:
    return MatrixRunner(pytester, shared_cache, [demo_wheels, base_wheels])


@pytest.fixture
def fresh_matrix(pytester, tmp_path, demo_wheels, base_wheels, hermetic_installer) -> MatrixRunner:
    """Like ``matrix`` but with an empty cache of its own, for tests that count builds."""
    return MatrixRunner(pytester, tmp_path / "fresh-cache", [demo_wheels, base_wheels])


@pytest.fixture(scope="session")
def plugin_wheels(request) -> Path:
    """Real third-party pytest plugins as local wheels, for tests that run them inside environments.

    Their dependencies (pytest, packaging) are in ``base_wheels``.
    """
    # one folder per pytest version: the plugin's newest release may need a newer pytest than this one
    dest = _wheelhouse_dir(request.config).parent / f"envmatrix-plugin-wheels-{pytest.__version__}"
    dest.mkdir(parents=True, exist_ok=True)
    stamp = dest / "complete-v2.json"
    with FileLock(str(dest) + ".lock"):
        if not stamp.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                 "--only-binary=:all:", "--dest", str(dest), "pytest-rerunfailures>=14", f"pytest=={pytest.__version__}"],
                check=True,
                timeout=600,
            )
            stamp.write_text(json.dumps(sorted(p.name for p in dest.glob("*.whl"))))
    return dest
