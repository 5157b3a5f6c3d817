"""Options and ini settings, resolved once into a frozen :class:`Settings`.

Each setting resolves command line → environment variable (where there is
one) → ini file → default, and each help text is written once and shared by
``addoption`` and ``addini``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from .installer import LINK_MODES, IndexOptions, Installer, find_uv, resolve_installer
from .matrix import MarkerError, Matrix, UpgradeTarget, parse_upgrade_targets, suite_matrix, validate_requirement_lines
from .shard import Durations, Shard, ShardError, parse_shard
from .package_index import DISTRIBUTION_NAME, TORCH_BACKEND, PackageIndexError, parse_package_indexes

CACHE_DIR_ENV = "PYTEST_ENVMATRIX_CACHE_DIR"

HELP_ENVMATRIX = "run tests marked with envmatrix once per combination, each in its own cached virtualenv"
HELP_LIST = "print each marked test's combinations and each environment (key, cached or not), and run nothing"
HELP_REBUILD = "rebuild the environments this run needs, even when cached"
HELP_INSTALLER = "installer that fills environments: auto (uv if available, else pip), uv or pip (default: auto)"
HELP_LINK_MODE = (
    "how uv puts packages from its cache into environments: copy (the default: a test that writes an installed file "
    "changes its own environment only), hardlink or symlink (faster; the files are shared with uv's cache), or clone "
    "(copy-on-write where the filesystem supports it, else uv makes hard links); pip always copies"
)
HELP_SHARED_PACKAGES = (
    "with uv and link mode copy (or clone): packages whose files stay hard-linked to uv's cache, one copy for every "
    "environment (e.g. torch), while every other package's files are the environment's own (repeatable; ini: one a line)"
)
HELP_INDEX_URL = "package index URL passed to the installer"
HELP_FIND_LINKS = "directory or URL of distributions passed to the installer (repeatable; ini: one a line, relative to the ini file)"
HELP_NO_INDEX = "do not use a package index: install only from --envmatrix-find-links"
HELP_PACKAGE_INDEX = (
    "where one package comes from, leaving the others' index alone: NAME=URL (a simple index) or NAME=DIR "
    "(a folder of wheels), e.g. torch=https://download.pytorch.org/whl/cpu (repeatable; ini: one 'name = URL' a line; "
    "uv only: pip has no per-package index)"
)
HELP_TORCH_BACKEND = (
    "uv's --torch-backend for every environment: take torch, torchvision, torchaudio and the like from PyTorch's "
    "index for this backend (cpu, cu126, rocm6.3, xpu, auto...); uv only"
)
HELP_CACHE_DIR = f"where environments are cached (default: the user cache directory; env: {CACHE_DIR_ENV})"
HELP_JOBS = "how many child pytests run at once, and how many environments are built at once besides them (default: the number of CPUs)"
HELP_TIMEOUT = "seconds one test may take inside its environment before its child is killed (default: none)"
HELP_PRUNE = "remove cached environments unused for envmatrix_max_age_days, print what was freed, and exit"
HELP_MAX_AGE = "days an environment may go unused before --envmatrix-prune removes it (default: 30)"
HELP_DEPS = "requirement lines installed into every environment (the suite's own test dependencies)"
HELP_REQUIRE_PYTHON = (
    "make a python=[...] interpreter that is not found on this machine an error on its items, not a skip "
    "(for CI, where every interpreter must run)"
)
HELP_AXIS = (
    "with --envmatrix, run every collected test once per value of this axis (repeatable, one package or "
    "python per use: numpy=1.26.4,2.1.3), each environment collecting the tests itself"
)
HELP_AXES = "the suite-wide matrix: one axis per line (numpy=1.26.4,2.1.3), as --envmatrix-axis"
HELP_UPGRADE = (
    "the upgrade check: run the tests in an environment that reproduces this one and in the same with this package "
    "moved to its newest release (or to ==VERSION), and list what changed; repeatable; implies --envmatrix"
)
HELP_REPORT = (
    "with --envmatrix, write a JSON report to this path after the run: every item's outcome and duration, and each "
    "environment's requested and installed packages, build and run times (see docs/reference.md)"
)
HELP_SHARD = (
    "run only shard K of N (K/N): the environments are split over N jobs, whole and the same way on every machine; "
    "the other shards' items are deselected, and unmarked tests run in shard 1"
)
HELP_DURATIONS = "balance --envmatrix-shard by the seconds recorded in this file (written by --envmatrix-store-durations), not by item counts"
HELP_STORE_DURATIONS = "after the run, write each item's seconds into the --envmatrix-durations file (items not run keep theirs)"
HELP_JSON = "with --envmatrix-list: print the matrix as one JSON document on stdout (pytest's own output goes to stderr)"
HELP_CACHE_KEY = (
    "print a digest of every environment this run (this shard) needs, for a CI cache key, on stdout, and run nothing"
)
HELP_PROJECT = "project installed into each environment (see envmatrix_project_build): auto (the rootdir, if buildable), none, or a path"
HELP_PROJECT_BUILD = (
    "how the project goes into each environment: editable (one build, shared), compiled (built in each environment "
    "against its packages, without build isolation), or auto (compiled when it has compiled code; the default)"
)
PROJECT_BUILDS = ("auto", "editable", "compiled")
HELP_PRE = "let the version selectors latest, oldest and minors:... (and --envmatrix-bisect) choose pre-releases"
HELP_REFRESH = "ask the index again for the releases behind version selectors, even when a cached answer is fresh"
HELP_VERSIONS_TTL = (
    "hours the index's list of a package's releases (for the selectors latest, oldest, minors:...) is reused "
    "before it is asked again (default: 24)"
)
HELP_BISECT = (
    "find the first release of PACKAGE in which a selected test fails: a binary search between --envmatrix-good and "
    "--envmatrix-bad, one environment per probe"
)
HELP_GOOD = "with --envmatrix-bisect: a version (or current, latest, oldest) in which the selected tests pass (default: current)"
HELP_BAD = "with --envmatrix-bisect: a version (or current, latest, oldest) in which a selected test fails (default: latest)"


# every ini option above: the child, which has no plugin, declares them too (see _child.py), so a
# project's --strict-config or filterwarnings = error does not stop it at "Unknown config option"
INI_NAMES = (
    "envmatrix_installer",
    "envmatrix_link_mode",
    "envmatrix_shared_packages",
    "envmatrix_cache_dir",
    "envmatrix_index_url",
    "envmatrix_find_links",
    "envmatrix_no_index",
    "envmatrix_package_index",
    "envmatrix_torch_backend",
    "envmatrix_jobs",
    "envmatrix_timeout",
    "envmatrix_max_age_days",
    "envmatrix_deps",
    "envmatrix_project",
    "envmatrix_project_build",
    "envmatrix_axes",
    "envmatrix_require_python",
    "envmatrix_versions_ttl",
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("envmatrix", "environment matrix")
    group.addoption("--envmatrix", action="store_true", default=False, help=HELP_ENVMATRIX)
    group.addoption("--envmatrix-list", action="store_true", default=False, help=HELP_LIST)
    group.addoption("--envmatrix-prune", action="store_true", default=False, help=HELP_PRUNE)
    group.addoption("--envmatrix-rebuild", action="store_true", default=False, help=HELP_REBUILD)
    group.addoption("--envmatrix-installer", choices=("auto", "uv", "pip"), default=None, help=HELP_INSTALLER)
    group.addoption("--envmatrix-link-mode", choices=LINK_MODES, default=None, help=HELP_LINK_MODE)
    group.addoption("--envmatrix-shared-package", metavar="NAME", action="append", default=[], help=HELP_SHARED_PACKAGES)
    group.addoption("--envmatrix-index-url", metavar="URL", default=None, help=HELP_INDEX_URL)
    group.addoption("--envmatrix-find-links", metavar="DIR", action="append", default=[], help=HELP_FIND_LINKS)
    group.addoption("--envmatrix-no-index", action="store_true", default=False, help=HELP_NO_INDEX)
    group.addoption("--envmatrix-package-index", metavar="NAME=URL", action="append", default=[], help=HELP_PACKAGE_INDEX)
    group.addoption("--envmatrix-torch-backend", metavar="BACKEND", default=None, help=HELP_TORCH_BACKEND)
    group.addoption("--envmatrix-cache-dir", metavar="DIR", default=None, help=HELP_CACHE_DIR)
    group.addoption("--envmatrix-jobs", metavar="N", type=int, default=None, help=HELP_JOBS)
    group.addoption("--envmatrix-timeout", metavar="SECONDS", type=float, default=None, help=HELP_TIMEOUT)
    # default None, not False: absent from the command line, the ini option decides
    group.addoption("--envmatrix-axis", metavar="NAME=V1,V2", action="append", default=[], help=HELP_AXIS)
    group.addoption("--envmatrix-require-python", action="store_true", default=None, help=HELP_REQUIRE_PYTHON)
    group.addoption("--envmatrix-upgrade", metavar="NAME[==VERSION]", action="append", default=[], help=HELP_UPGRADE)
    group.addoption("--envmatrix-report", metavar="PATH", default=None, help=HELP_REPORT)
    group.addoption("--envmatrix-pre", action="store_true", default=False, help=HELP_PRE)
    group.addoption("--envmatrix-refresh", action="store_true", default=False, help=HELP_REFRESH)
    group.addoption("--envmatrix-bisect", metavar="PACKAGE", default=None, help=HELP_BISECT)
    group.addoption("--envmatrix-good", metavar="VERSION", default=None, help=HELP_GOOD)
    group.addoption("--envmatrix-bad", metavar="VERSION", default=None, help=HELP_BAD)
    # what a bisect probe is: the driver (bisect.py) starts one pytest per probe with these; not for people
    group.addoption("--envmatrix-probe", metavar="NAME=VERSION", default=None, help=argparse.SUPPRESS)
    group.addoption("--envmatrix-probe-report", metavar="PATH", default=None, help=argparse.SUPPRESS)
    group.addoption("--envmatrix-shard", metavar="K/N", default=None, help=HELP_SHARD)
    group.addoption("--envmatrix-durations", metavar="FILE", default=None, help=HELP_DURATIONS)
    group.addoption("--envmatrix-store-durations", action="store_true", default=False, help=HELP_STORE_DURATIONS)
    group.addoption("--envmatrix-json", action="store_true", default=False, help=HELP_JSON)
    group.addoption("--envmatrix-cache-key", action="store_true", default=False, help=HELP_CACHE_KEY)
    parser.addini("envmatrix_installer", HELP_INSTALLER, default="auto")
    parser.addini("envmatrix_link_mode", HELP_LINK_MODE, default="copy")
    parser.addini("envmatrix_shared_packages", HELP_SHARED_PACKAGES, type="linelist", default=[])
    parser.addini("envmatrix_cache_dir", HELP_CACHE_DIR, default="")
    # the index options in the ini file: no path on the command line, so no path taken for a test path
    parser.addini("envmatrix_index_url", HELP_INDEX_URL, default="")
    parser.addini("envmatrix_find_links", HELP_FIND_LINKS, type="linelist", default=[])
    parser.addini("envmatrix_no_index", HELP_NO_INDEX, type="bool", default=False)
    parser.addini("envmatrix_package_index", HELP_PACKAGE_INDEX, type="linelist", default=[])
    parser.addini("envmatrix_torch_backend", HELP_TORCH_BACKEND, default="")
    parser.addini("envmatrix_jobs", HELP_JOBS, default="")
    parser.addini("envmatrix_timeout", HELP_TIMEOUT, default="")
    parser.addini("envmatrix_max_age_days", HELP_MAX_AGE, default="30")  # ini only: a cache policy
    parser.addini("envmatrix_deps", HELP_DEPS, type="linelist", default=[])
    parser.addini("envmatrix_project", HELP_PROJECT, default="auto")
    parser.addini("envmatrix_project_build", HELP_PROJECT_BUILD, default="auto")
    parser.addini("envmatrix_axes", HELP_AXES, type="linelist", default=[])
    parser.addini("envmatrix_require_python", HELP_REQUIRE_PYTHON, type="bool", default=False)
    parser.addini("envmatrix_versions_ttl", HELP_VERSIONS_TTL, default="24")  # ini only: a cache policy


@dataclass(frozen=True)
class Settings:
    enabled: bool  # --envmatrix
    list_only: bool
    rebuild: bool
    cache_dir: Path
    installer: Installer
    index: IndexOptions
    deps: tuple[str, ...]
    project: str
    jobs: int
    timeout: float | None
    require_python: bool = False  # a missing interpreter errors its items instead of skipping them
    project_build: str = "auto"  # editable, compiled, or auto: compiled when the project has compiled code
    suite: Matrix | None = None  # the suite-wide matrix (--envmatrix-axis, envmatrix_axes), if any
    upgrade: tuple[UpgradeTarget, ...] = ()  # the upgrade check's packages (--envmatrix-upgrade), if any
    report: Path | None = None  # --envmatrix-report: where the JSON report goes
    pre: bool = False  # selectors may choose pre-releases
    refresh: bool = False  # selectors ask the index again
    versions_ttl: float = 24.0  # hours an index's answer is reused
    shard: Shard | None = None  # --envmatrix-shard
    durations: Durations | None = None  # what --envmatrix-durations recorded (empty when storing a new file)
    durations_path: Path | None = None
    store_durations: bool = False
    output: str = "text"  # what a listing prints: text, json (--envmatrix-json) or cache-key

    @property
    def expands(self) -> bool:
        """Whether marked tests become one item per combination."""
        return self.enabled or self.list_only

    @property
    def suite_wide(self) -> bool:
        """Whether the children collect the suite: a suite-wide matrix, or the upgrade check's two environments."""
        return (self.suite is not None or bool(self.upgrade)) and self.enabled

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        opt = config.option
        list_only = opt.envmatrix_list or opt.envmatrix_cache_key
        output = "cache-key" if opt.envmatrix_cache_key else "json" if opt.envmatrix_json else "text"
        if opt.envmatrix_json and not opt.envmatrix_list:
            raise pytest.UsageError("--envmatrix-json: only with --envmatrix-list (pytest --envmatrix-list --envmatrix-json)")
        try:
            shard = parse_shard(opt.envmatrix_shard) if opt.envmatrix_shard is not None else None
        except ShardError as exc:
            raise pytest.UsageError(str(exc)) from None
        durations_path, durations = _durations(config)
        try:
            deps = validate_requirement_lines(config.getini("envmatrix_deps"), "ini option envmatrix_deps")
            if opt.envmatrix_probe:
                # a bisect probe: every selected test runs at this one version, whatever its markers say
                probed = _axis_name(opt.envmatrix_probe)
                others = [axis for axis in opt.envmatrix_axis if _axis_name(axis) != probed]
                suite = suite_matrix([opt.envmatrix_probe, *others], config.getini("envmatrix_axes"), forced=True)
            else:
                suite = suite_matrix(opt.envmatrix_axis, config.getini("envmatrix_axes"))
            upgrade = parse_upgrade_targets(opt.envmatrix_upgrade)
        except MarkerError as exc:
            raise pytest.UsageError(str(exc)) from None
        if upgrade:
            _check_upgrade(opt)
            suite = None  # the upgrade check's two environments replace the suite-wide matrix (the ini's axes)
        enabled = opt.envmatrix or bool(upgrade) or bool(opt.envmatrix_probe)
        choice = opt.envmatrix_installer or config.getini("envmatrix_installer").strip() or "auto"
        link_mode = _link_mode(config)
        shared = _shared_packages(config)
        installer = Installer("pip", link_mode=link_mode, shared_packages=shared)
        if enabled or list_only:
            try:
                installer = resolve_installer(choice, link_mode, shared)
            except ValueError as exc:
                raise pytest.UsageError(str(exc)) from None
        index = _index(config)
        if enabled or list_only:
            _check_sources(installer, index)
        return cls(
            enabled=enabled,
            list_only=list_only,
            rebuild=opt.envmatrix_rebuild,
            cache_dir=cache_dir(config),
            installer=installer,
            index=index,
            deps=tuple(deps),
            project=config.getini("envmatrix_project").strip() or "auto",
            jobs=_jobs(config),
            timeout=_timeout(config),
            require_python=_require_python(config),
            suite=suite,
            upgrade=upgrade,
            report=_report(config),
            pre=opt.envmatrix_pre,
            refresh=opt.envmatrix_refresh,
            versions_ttl=versions_ttl(config),
            shard=shard,
            durations=durations,
            durations_path=durations_path,
            store_durations=opt.envmatrix_store_durations,
            output=output,
            project_build=_project_build(config),
        )


def _check_upgrade(opt) -> None:
    if opt.envmatrix_axis:
        raise pytest.UsageError(
            "--envmatrix-upgrade runs the tests in two environments of its own: it does not combine with --envmatrix-axis"
        )
    if find_uv() is None:
        raise pytest.UsageError(
            "--envmatrix-upgrade resolves the environment after the upgrade with uv, which is neither importable "
            "nor on PATH (pip install 'pytest-envmatrix[uv]')"
        )


def _number(config: pytest.Config, name: str, kind: type, minimum: float, what: str):
    """Command line, then ini; None when neither sets it. Errors name the source and the value."""
    value = getattr(config.option, name, None)
    source = "--" + name.replace("_", "-")
    if value is None:
        value, source = config.getini(name).strip(), f"ini option {name}"
        if not value:
            return None
    try:
        number = kind(value)
    except ValueError:
        raise pytest.UsageError(f"{source}: {value!r} is not {what}") from None
    if number < minimum:
        raise pytest.UsageError(f"{source}: {value} must be at least {minimum:g}")
    return number


def _report(config: pytest.Config) -> Path | None:
    """Relative to the directory pytest was started in, as ``--junitxml``'s path."""
    value = config.option.envmatrix_report
    if not value:
        return None
    return (config.invocation_params.dir / Path(value).expanduser()).resolve()


def max_age_days(config: pytest.Config) -> float:
    days = _number(config, "envmatrix_max_age_days", float, 0, "a number of days")
    return 30.0 if days is None else days


def _axis_name(text: str) -> str:
    name = text.partition("=")[0].strip()
    try:
        return canonicalize_name(name)
    except ValueError:
        return name


def versions_ttl(config: pytest.Config) -> float:
    hours = _number(config, "envmatrix_versions_ttl", float, 0, "a number of hours")
    return 24.0 if hours is None else hours


def _jobs(config: pytest.Config) -> int:
    jobs = _number(config, "envmatrix_jobs", int, 1, "a whole number")
    return jobs if jobs is not None else (os.cpu_count() or 1)


def _timeout(config: pytest.Config) -> float | None:
    return _number(config, "envmatrix_timeout", float, 0.001, "a number of seconds")


def _link_mode(config: pytest.Config) -> str:
    """Command line (argparse checks its choices), then ini; a bad ini value names itself."""
    if config.option.envmatrix_link_mode:
        return config.option.envmatrix_link_mode
    value = config.getini("envmatrix_link_mode").strip() or "copy"
    if value not in LINK_MODES:
        raise pytest.UsageError(f"ini option envmatrix_link_mode: {value!r} is not one of {', '.join(LINK_MODES)}")
    return value


def _project_build(config: pytest.Config) -> str:
    value = config.getini("envmatrix_project_build").strip() or "auto"
    if value not in PROJECT_BUILDS:
        raise pytest.UsageError(f"ini option envmatrix_project_build: {value!r} is not one of {', '.join(PROJECT_BUILDS)}")
    return value


def _shared_packages(config: pytest.Config) -> tuple[str, ...]:
    """Command line (replacing the ini's list when given), then ini; canonical names, each once."""
    names, source = config.option.envmatrix_shared_package, "--envmatrix-shared-package"
    if not names:
        names, source = config.getini("envmatrix_shared_packages"), "ini option envmatrix_shared_packages"
    out = []
    for raw in names:
        name = raw.strip()
        if not name or name.startswith("#"):
            continue
        if not DISTRIBUTION_NAME.match(name):
            raise pytest.UsageError(f"{source}: {name!r} is not a valid distribution name")
        if canonicalize_name(name) not in out:
            out.append(canonicalize_name(name))
    return tuple(sorted(out))


def _require_python(config: pytest.Config) -> bool:
    if config.option.envmatrix_require_python is not None:
        return True
    try:
        return bool(config.getini("envmatrix_require_python"))
    except (ValueError, pytest.UsageError) as exc:  # pytest 9.2 raises the latter for a bad ini value
        raise pytest.UsageError(f"ini option envmatrix_require_python: {exc} (write true or false)") from None


def _durations(config: pytest.Config) -> tuple[Path | None, Durations | None]:
    """The durations file and what it holds; a file that is not there yet is fine only when it is to be written."""
    opt = config.option
    if opt.envmatrix_durations is None:
        if opt.envmatrix_store_durations:
            raise pytest.UsageError("--envmatrix-store-durations: name the file with --envmatrix-durations=FILE")
        return None, None
    path = _absolute_path(opt.envmatrix_durations, config.invocation_params.dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if opt.envmatrix_store_durations:
            return path, Durations()
        raise pytest.UsageError(
            f"--envmatrix-durations: {path} does not exist; write it with --envmatrix-store-durations (one run of every shard)"
        ) from None
    except OSError as exc:
        raise pytest.UsageError(f"--envmatrix-durations: {path} cannot be read: {exc}") from None
    try:
        return path, Durations.parse(text, str(path))
    except ShardError as exc:
        raise pytest.UsageError(str(exc)) from None


def _absolute_path(value: str, base: Path) -> Path:
    return (base / Path(value).expanduser()).resolve()


def _index(config: pytest.Config) -> IndexOptions:
    """Command line, then ini; command-line find-links replace the ini's, and either may switch the index off."""
    opt = config.option
    index_url = opt.envmatrix_index_url or config.getini("envmatrix_index_url").strip() or None
    if opt.envmatrix_find_links:
        invocation = config.invocation_params.dir
        find_links = tuple(_absolute(link, invocation) for link in opt.envmatrix_find_links)
    else:
        base = config.inipath.parent if config.inipath else config.rootpath
        find_links = tuple(_absolute(link.strip(), base) for link in config.getini("envmatrix_find_links") if link.strip())
    try:
        no_index = opt.envmatrix_no_index or bool(config.getini("envmatrix_no_index"))
    except (ValueError, pytest.UsageError) as exc:  # pytest 9.2 raises the latter for a bad ini value
        raise pytest.UsageError(f"ini option envmatrix_no_index: {exc} (write true or false)") from None
    return IndexOptions(index_url, find_links, no_index, _package_indexes(config), _torch_backend(config))


def _package_indexes(config: pytest.Config) -> tuple:
    """The ini's table, then the command line's entries, each replacing the ini's entry for its package."""
    base = config.inipath.parent if config.inipath else config.rootpath
    try:
        indexes = parse_package_indexes(config.getini("envmatrix_package_index"), "ini option envmatrix_package_index", base)
        indexes.update(parse_package_indexes(config.option.envmatrix_package_index, "--envmatrix-package-index", config.invocation_params.dir))
    except PackageIndexError as exc:
        raise pytest.UsageError(str(exc)) from None
    return tuple(indexes[name] for name in sorted(indexes))


def _torch_backend(config: pytest.Config) -> str | None:
    value, source = config.option.envmatrix_torch_backend, "--envmatrix-torch-backend"
    if value is None:
        value, source = config.getini("envmatrix_torch_backend").strip(), "ini option envmatrix_torch_backend"
    if not value:
        return None
    if not TORCH_BACKEND.fullmatch(value):
        raise pytest.UsageError(f"{source}: {value!r} is not a PyTorch backend uv knows (cpu, cu126, rocm6.3, xpu, auto, ...)")
    return value


def _check_sources(installer: Installer, index: IndexOptions) -> None:
    """A package index or a torch backend that the installer cannot honour stops the run, never a silent fallback."""
    names = ", ".join(package.name for package in index.package_indexes)
    if installer.name == "pip" and names:
        raise pytest.UsageError(
            f"envmatrix: a package index of its own ({names}) needs the uv installer: pip has no per-package index, and "
            "its --extra-index-url would let any package come from either index (dependency confusion); install uv "
            "(pip install 'pytest-envmatrix[uv]'), or take every package from that index with --envmatrix-index-url"
        )
    if installer.name == "pip" and index.torch_backend:
        raise pytest.UsageError(
            "envmatrix: a torch backend needs the uv installer (pip has no --torch-backend); install uv "
            "(pip install 'pytest-envmatrix[uv]'), or take every package from PyTorch's index for that backend with "
            "--envmatrix-index-url (https://download.pytorch.org/whl/cpu, say)"
        )
    if index.no_index and names:
        raise pytest.UsageError(
            f"envmatrix: --envmatrix-no-index (envmatrix_no_index) switches off every index, the package index of {names} "
            "too; drop it, or use --envmatrix-find-links for a folder of wheels"
        )


def _absolute(link: str, base: Path) -> str:
    if "://" in link:
        return link
    return str((base / link).resolve())


def cache_dir(config: pytest.Config) -> Path:
    if config.option.envmatrix_cache_dir:
        return Path(config.option.envmatrix_cache_dir).expanduser().resolve()
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser().resolve()
    ini = config.getini("envmatrix_cache_dir").strip()
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return (base / Path(ini).expanduser()).resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir("pytest-envmatrix", appauthor=False))
