"""The on-disk cache of built environments.

An environment lives at ``<cache>/envs/<key>``. Virtualenvs are not
relocatable, so it is built in place, under a per-key file lock, and the
completion mark (``envmatrix.json``) is written last and atomically. A
directory without a valid mark is never trusted: it is removed and rebuilt.

The mark records the path the environment was built at. A cache restored
at another path (a CI cache step, a copied directory) holds environments
whose scripts still name the old one: such an environment is used only
after its scripts were rewritten for its new place, under its build lock,
and the mark updated last; one that cannot be (or one another user owns) is
rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from . import distributions
from .compiled import DYNAMIC_REQUIRES_SCRIPT, SOURCE_DIR, BuildSystem, build_requirements, copy_sources, parse_dynamic_requires, read_build_system
from .disk import make_private
from .failures import FailureMemory, RememberedFailure
from .files import write_whole
from .integrity import changed_distributions, relocate
from .processes import end, inside_path, supervised_command, supervisor_environment
from .recipe import Recipe

if TYPE_CHECKING:
    from filelock import FileLock

MARK = "envmatrix.json"
PYCACHE = "pycache"  # PYTHONPYCACHEPREFIX of every child, shared by all environments (see runner.child_environment)
LAST_USED = "envmatrix-last-used"
SOURCES_DIR = "envmatrix-sources"  # the pyproject.toml that gives packages an index of their own (package_index.py)
BUILD_LOG = "builds.log"  # one JSON line per finished build: what was built, when, by which process
_WAIT_NOTICE_SECONDS = 3
_STOP_CHECK_SECONDS = 0.05  # how often a wait for a lock, a build slot or an installer looks at the stop event
_KEY_CHARS = 16  # of the sha256: short enough for shebang lines, long enough never to collide here

_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pytest-envmatrix.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)


class BuildError(Exception):
    """An environment could not be built; carries what the user needs to see why."""

    def __init__(self, summary: str, command: list[str] | None = None, output: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
        self.command = command
        self.output = output

    @property
    def reason(self) -> str:
        """Why, in one line: the installer's own explanation where its output has one, else the summary.

        uv says what failed on an ``error:`` (or ``×``) line and why on the ``cause:``
        (``╰─▶``, ``Caused by:``) lines under it; pip on its ``ERROR:`` lines.
        """
        lines = _unwrapped(self.output)
        errors = [
            _strip_prefix(line, _ERROR_PREFIXES) for line in lines
            if line.startswith(_ERROR_PREFIXES) and "subprocess-exited-with-error" not in line
        ]
        causes = [_strip_prefix(line, _CAUSE_PREFIXES) for line in lines if line.startswith(_CAUSE_PREFIXES)]
        if not errors:
            return self.summary
        return f"{errors[0]}: {causes[-1]}" if causes else errors[0]

    def __str__(self) -> str:
        lines = [self.summary]
        if self.command:
            lines.append("command: " + " ".join(self.command))
        tail = self.output.strip().splitlines()[-40:]
        if tail:
            lines.append("output (last lines):")
            lines.extend("    " + line for line in tail)
        return "\n".join(lines)


_ERROR_PREFIXES = ("error:", "ERROR:", "×")
_CAUSE_PREFIXES = ("cause:", "Caused by:", "╰─▶")


def _unwrapped(output: str) -> list[str]:
    """The output's lines, stripped, with uv's wrapped explanations joined back into one line each.

    uv wraps a ``cause:`` to the terminal's width and indents the rest under it.
    """
    joined: list[str] = []
    indent = None  # the indentation of the explanation being continued
    for raw in output.splitlines():
        line = raw.strip()
        depth = len(raw) - len(raw.lstrip())
        if line and indent is not None and depth > indent and not line.startswith(_ERROR_PREFIXES + _CAUSE_PREFIXES):
            joined[-1] += " " + line
            continue
        indent = depth if line.startswith(_CAUSE_PREFIXES) else None
        joined.append(line)
    return joined


def _strip_prefix(line: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return line


class BuildFailedRecently(BuildError):
    """The same environment (same key) failed to build a short time ago: not tried again."""

    def __init__(self, remembered: RememberedFailure) -> None:
        super().__init__(remembered.describe())
        self.remembered = remembered

    def __str__(self) -> str:
        return self.summary


class BuildStopped(Exception):
    """The run stopped (Ctrl-C, ``-x``, ``--maxfail``) while this environment waited or was being built.

    Nothing was built: a build under way had its installer killed and its
    directory removed.
    """


@dataclass(frozen=True)
class BuiltEnv:
    path: Path
    python: Path
    key: str
    reused: bool  # False when this call built it
    seconds: float  # spent building (0 when reused)
    requirements: tuple[str, ...] = ()  # what it was filled with, for the child to check

    @property
    def pycache_prefix(self) -> Path:
        """Where children write bytecode when the user switched it off: one tree for the whole cache."""
        return self.path.parent.parent / PYCACHE


class EnvCache:
    def __init__(
        self, root: Path, lock_timeout: float = 1800, max_builds: int | None = None, stop: threading.Event | None = None
    ) -> None:
        """``max_builds``: how many environments this process builds at once (threads wait their turn).

        ``stop``: once set, every wait (for a build slot, another process's
        build lock, an installer) ends within a fraction of a second with
        :class:`BuildStopped`, and a build under way is undone.
        """
        self.root = Path(root)
        self.lock_timeout = lock_timeout
        self.stop = stop if stop is not None else threading.Event()
        self._build_slots = threading.BoundedSemaphore(max_builds) if max_builds else None
        self._in_use: dict[str, int] = {}  # env name → descriptor holding its shared "in use" lock
        self._in_use_guard = threading.Lock()
        self.failures = FailureMemory(self.root)

    def env_dir(self, recipe: Recipe) -> Path:
        return self._dir_of(recipe.key)

    def _dir_of(self, key: str) -> Path:
        return self.root / "envs" / key[:_KEY_CHARS]

    def lookup(self, recipe: Recipe) -> BuiltEnv | None:
        """The complete environment for ``recipe``, or None; takes no lock and starts nothing."""
        return self._lookup_key(recipe.key)

    def _lookup_key(self, key: str) -> BuiltEnv | None:
        path = self._dir_of(key)
        mark = self._mark(path, key)
        if mark is None or mark.get("path") != str(path):
            return None  # built elsewhere (or before marks named their place): see _relocated
        return self._complete(path, key, mark)

    def _mark(self, path: Path, key: str) -> dict | None:
        """The environment's completion mark, if it is one, for ``key``, in a directory this user owns."""
        try:
            if hasattr(os, "getuid") and path.stat().st_uid != os.getuid():
                return None  # another user's: we would run their interpreter
            mark = json.loads((path / MARK).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # RecursionError: valid JSON nested too deep to parse
            return None
        if not isinstance(mark, dict) or mark.get("key") != key:
            return None
        return mark

    def _relocated(self, key: str) -> BuiltEnv | None:
        """The environment, made usable where it is now after it was built at another path; None if it cannot be.

        Call with the build lock held.
        """
        path = self._dir_of(key)
        mark = self._mark(path, key)
        old = mark.get("path") if mark is not None else None
        if not isinstance(old, str) or not os.path.isabs(old) or "\0" in old or old == str(path):
            return None
        if self._complete(path, key, mark) is None:
            return None
        try:
            if not relocate(path, old):
                return None
            write_whole(path / MARK, json.dumps({**mark, "path": str(path)}, indent=2))
        except OSError:
            return None
        return self._lookup_key(key)

    def _complete(self, path: Path, key: str, mark: dict) -> BuiltEnv | None:
        python = _inside(path, mark.get("env_python"))
        try:
            if python is None or not python.is_file():
                return None
        except (OSError, ValueError):
            return None
        requirements = mark.get("requirements")
        if not isinstance(requirements, list) or not all(_is_requirement(r) for r in requirements):
            return None
        return BuiltEnv(path, python, key, reused=True, seconds=0.0, requirements=tuple(requirements))

    def reuse(self, key: str) -> BuiltEnv | None:
        """The complete environment with cache key ``key``, held in use like ``ensure``'s; None if absent or unsafe.

        For starting work before the recipe is known again: the caller
        checks later that the key is still the one its recipe makes.
        """
        path = self._dir_of(key)
        try:
            self._check_safe(path)
        except BuildError:
            return None  # ensure() reports it, when the run gets there
        self._hold_in_use(path.name)
        found = self._lookup_key(key)
        if found:
            self._touch(found.path)
        return found

    def ensure(self, recipe: Recipe, rebuild: bool = False, on_wait=None) -> BuiltEnv:
        """Reuse the environment for ``recipe`` or build it; at most one process builds it.

        ``on_wait(message)`` is told when another process holds the build lock
        for more than a few seconds.
        """
        self._check_safe(self.env_dir(recipe))
        self._hold_in_use(self.env_dir(recipe).name)
        if not rebuild:
            found = self.lookup(recipe)
            if found:
                self._touch(found.path)
                return found
            self._check_failed_recently(recipe)
        with self._build_slot():
            try:
                return self._build_locked(recipe, rebuild, on_wait)
            except OSError as exc:
                # a read-only cache, a directory where a lock or the log should be, a full disk:
                # the environment cannot be had, and the rest of the run goes on
                raise BuildError(f"the environment cache {self.root} is not usable: {exc}") from exc

    def _build_locked(self, recipe: Recipe, rebuild: bool, on_wait) -> BuiltEnv:
        self._prepare_root()
        from filelock import FileLock  # here: a run that builds nothing need not import it

        lock = FileLock(str(self.root / "locks" / f"{recipe.key[:_KEY_CHARS]}.lock"))
        self._acquire(lock, recipe, on_wait)
        try:
            if not rebuild:
                # another process may have built it while we waited for the lock
                found = self.lookup(recipe) or self._relocated(recipe.key)
                if found:
                    self._touch(found.path)
                    return found
                self._check_failed_recently(recipe)  # another process may have failed while we waited
            self._check_stop()
            try:
                built = self._build(recipe, fresh_project=rebuild)
            except BuildError as exc:
                self.failures.remember(recipe.key, str(exc))
                raise
            self.failures.forget(recipe.key)
            return built
        finally:
            lock.release()

    def _check_failed_recently(self, recipe: Recipe) -> None:
        remembered = self.failures.recall(recipe.key)
        if remembered is not None:
            raise BuildFailedRecently(remembered)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise BuildStopped("the run stopped before this environment was ready")

    @contextlib.contextmanager
    def _build_slot(self):
        if self._build_slots is None:
            self._check_stop()
            yield
            return
        while not self._build_slots.acquire(timeout=_STOP_CHECK_SECONDS):
            self._check_stop()
        try:
            self._check_stop()
            yield
        finally:
            self._build_slots.release()

    def _hold_in_use(self, name: str) -> None:
        """Hold a shared lock on the environment for the rest of this process, so prune skips it.

        filelock offers exclusive locks only (in the versions we support), so
        this is ``flock(LOCK_SH)``; where there is no ``fcntl`` (Windows), or
        the cache is read-only, environments in use are protected by their
        last-used time alone.
        """
        if fcntl is None:
            return
        with self._in_use_guard:
            if name in self._in_use:
                return
            try:
                (self.root / "locks").mkdir(parents=True, exist_ok=True)
                fd = os.open(self.root / "locks" / f"{name}.use", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            except OSError:
                return
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a prune is removing this environment
            self._in_use[name] = fd

    def release(self) -> None:
        with self._in_use_guard:
            for fd in self._in_use.values():
                os.close(fd)
            self._in_use.clear()

    def _check_safe(self, path: Path) -> None:
        """Refuse a cache someone else controls: we would run their interpreter."""
        if hasattr(os, "getuid") and self.root.exists():
            owner = self.root.stat().st_uid
            if owner != os.getuid():
                raise BuildError(
                    f"refusing to use the environment cache {self.root}: it belongs to user id {owner}, "
                    f"not to you ({os.getuid()}); choose another with --envmatrix-cache-dir"
                )
        if path.is_symlink():
            raise BuildError(
                f"refusing to use {path}: it is a symbolic link (to {os.readlink(path)}), "
                "and environments are never followed through links; remove it"
            )

    def _acquire(self, lock: FileLock, recipe: Recipe, on_wait) -> None:
        """Take the build lock, in short tries, so that a stopped run stops waiting at once."""
        from filelock import Timeout

        start = time.monotonic()
        told = False
        while True:
            self._check_stop()
            try:
                lock.acquire(timeout=_STOP_CHECK_SECONDS, poll_interval=_STOP_CHECK_SECONDS / 2)
                break
            except Timeout:
                pass
            waited = time.monotonic() - start
            if waited >= self.lock_timeout:
                raise BuildError(
                    f"gave up after {self.lock_timeout:g} s waiting for the build lock {lock.lock_file}"
                ) from None
            if on_wait and not told and waited >= _WAIT_NOTICE_SECONDS:
                told = True
                on_wait(f"waiting for another process building {recipe.spec.label} (lock {lock.lock_file})")
        if self.stop.is_set():
            lock.release()
            self._check_stop()

    def _build(self, recipe: Recipe, fresh_project: bool = False) -> BuiltEnv:
        path = self.env_dir(recipe)
        start = time.monotonic()
        if path.exists() or path.is_symlink():
            _remove(path)
            if path.exists() or path.is_symlink():
                raise BuildError(f"could not remove {path} to build it afresh (another user's files?); remove it")
        try:
            python = self._create(recipe, path)
            self._check_stop()
            self._install(recipe, path, python, fresh_project)
            distributions.record(path)  # before the mark: a complete environment always has its record
            seconds = time.monotonic() - start
            self._write_mark(recipe, path, python, seconds)
        except BaseException:
            _remove(path)
            raise
        self._touch(path)
        self._log_build(recipe, seconds)
        return BuiltEnv(path, python, recipe.key, reused=False, seconds=seconds, requirements=tuple(recipe.requirements))

    def _create(self, recipe: Recipe, path: Path) -> Path:
        command = recipe.installer.venv_command(recipe.interpreter.executable, str(path))
        if command is not None:
            self._run_tool(recipe.installer.name, command, f"could not create the environment for {recipe.spec.label}")
            return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        from virtualenv import cli_run

        args = [str(path), "--python", recipe.interpreter.executable, "--no-periodic-update", "--activators", ""]
        args += ["--no-setuptools"] if recipe.installer.needs_seed else ["--no-seed"]
        # an explicit env keeps VIRTUALENV_* settings of the user's shell out of our environments
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUALENV_")}
        try:
            session = cli_run(args, setup_logging=False, env=env)
        except (Exception, SystemExit) as exc:
            raise BuildError(f"creating the virtualenv failed: {exc}", ["virtualenv", *args]) from exc
        return Path(session.creator.exe)

    def _install(self, recipe: Recipe, path: Path, python: Path, fresh_project: bool) -> None:
        """Fill the environment; ``--envmatrix-rebuild`` also builds the project afresh, and with uv
        checks every installed file, installing again without uv's cache what a damaged cache entry gave."""
        compiled = recipe.project is not None and recipe.project.compiled is not None
        editable = recipe.project.root if recipe.project and not compiled else None
        requirements = recipe.requirements
        if compiled:
            build_system = read_build_system(Path(recipe.project.root))
            requirements = (*requirements, *build_requirements(build_system.requires, recipe.requirements))
        scratch = None if fresh_project else path
        sources = path / SOURCES_DIR
        command = recipe.installer.command(str(python), requirements, editable, recipe.index, scratch, sources_dir=sources)
        self._run_tool(recipe.installer.name, command, f"could not install {recipe.spec.label}", virtual_env=python.parent.parent)
        if compiled:
            self._build_project(recipe, path, python, build_system)
        self._make_private(recipe, path)
        if not fresh_project or recipe.installer.name != "uv":
            return
        changed = changed_distributions(path)
        if changed:
            command = recipe.installer.command(
                str(python), requirements, editable, recipe.index, scratch, uncached=sorted(changed), sources_dir=sources
            )
            self._run_tool(
                recipe.installer.name,
                command,
                f"could not reinstall {', '.join(sorted(changed))} without its cache for {recipe.spec.label}",
                virtual_env=python.parent.parent,
            )
            self._make_private(recipe, path)

    def _make_private(self, recipe: Recipe, path: Path) -> None:
        if recipe.installer.makes_private:
            self._check_stop()
            make_private(path, recipe.installer.shared)

    def _build_project(self, recipe: Recipe, path: Path, python: Path, build_system: BuildSystem) -> None:
        """Build a compiled project in the environment, from a copy of its sources, and install it.

        The environment already holds the pins and the static build
        requirements; the backend is asked for the rest (meson-python wants
        ``ninja`` when there is none), with the environment's scripts on PATH
        and the outer environment's left out. The copy is removed once the
        wheel is installed.
        """
        label = recipe.spec.label
        source = copy_sources(Path(recipe.project.root), path / SOURCE_DIR)
        try:
            output = self._run_tool(
                "the build backend",
                [str(python), "-c", DYNAMIC_REQUIRES_SCRIPT, build_system.backend, json.dumps(list(build_system.backend_path))],
                f"could not ask {build_system.backend or 'the build backend'} what building the project needs in {label}",
                virtual_env=path,
                cwd=source,
            )
            dynamic = parse_dynamic_requires(output)
            if dynamic is None:
                raise BuildError(f"the build backend {build_system.backend} did not say what building the project needs in {label}", output=output)
            extra = build_requirements(dynamic, recipe.requirements)
            if extra:
                command = recipe.installer.command(str(python), [*recipe.requirements, *extra], None, recipe.index, sources_dir=path / SOURCES_DIR)
                self._run_tool(recipe.installer.name, command, f"could not install the project's build requirements in {label}", virtual_env=path)
            command = recipe.installer.compiled_project_command(str(python), str(source), recipe.requirements, recipe.index)
            self._run_tool(recipe.installer.name, command, f"could not build the project in {label}", virtual_env=path)
        finally:
            _remove(source)

    def _run_tool(self, tool: str, command: list[str], failure: str, virtual_env: Path | None = None, cwd: Path | None = None) -> str:
        """Run an installer (or a build backend); when the run stops meanwhile, kill it with everything it started.

        With ``virtual_env``, it works in that environment: ``VIRTUAL_ENV``
        names it, and ``PATH`` starts with its scripts and leaves out those
        of the virtualenv this pytest runs in, so that a build finds the
        environment's ``ninja`` or ``cython``, never the outer one's.
        Returns what it printed.
        """
        env = dict(os.environ)
        env.pop("PYTHONHOME", None)
        if virtual_env is not None:
            env["VIRTUAL_ENV"] = str(virtual_env)
            env["PATH"] = inside_path(str(virtual_env / ("Scripts" if os.name == "nt" else "bin")), env.get("PATH", ""))
        self._check_stop()
        if shutil.which(command[0]) is None:
            raise BuildError(f"could not start {tool}: {command[0]} is not an executable on PATH", command)
        try:
            # under a supervisor, in a session of its own: it can be ended with all it started
            # (a package's build backend too), and it dies with this process, even a SIGKILLed one
            proc = subprocess.Popen(
                supervised_command(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, env=supervisor_environment(env), start_new_session=True,
                cwd=str(cwd) if cwd is not None else None,
            )
        except OSError as exc:
            raise BuildError(f"could not start {tool}: {exc}", command) from exc
        try:
            while True:
                try:
                    output, _ = proc.communicate(timeout=_STOP_CHECK_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    if self.stop.is_set():
                        raise BuildStopped(f"the run stopped while {tool} was building an environment") from None
        finally:
            if proc.poll() is None:
                end(proc)
        text = output.decode("utf-8", "replace")
        if proc.returncode != 0:
            raise BuildError(f"{tool} {failure} ({_exit_words(proc.returncode)})", command, text)
        return text

    def _write_mark(self, recipe: Recipe, path: Path, python: Path, seconds: float) -> None:
        mark = {
            "key": recipe.key,
            "env_python": str(python.relative_to(path)),
            "path": str(path),  # where its scripts say it is: elsewhere, they are rewritten before it is used
            "built_at": time.time(),
            "build_seconds": round(seconds, 3),
            **recipe.describe(),
        }
        write_whole(path / MARK, json.dumps(mark, indent=2))

    def _log_build(self, recipe: Recipe, seconds: float) -> None:
        """Append one line to ``builds.log``, whole or not at all (a full disk must not leave half a line)."""
        line = {"key": recipe.key, "label": recipe.spec.label, "pid": os.getpid(), "at": time.time(), "seconds": round(seconds, 3)}
        data = (json.dumps(line) + "\n").encode("utf-8")
        try:
            fd = self._open_log()
        except OSError:
            return  # the environment is built; only its line in the log is missing
        try:
            written = os.write(fd, data)
            if written != len(data):
                os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_CUR) - written)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _open_log(self) -> int:
        """``builds.log`` for appending; never through a symbolic link, which could lead anywhere."""
        return os.open(self.root / BUILD_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)

    def prune(self, max_age_days: float) -> list[tuple[Path, int]]:
        """Remove environments unused for ``max_age_days``; returns (path, bytes freed) for each.

        An environment whose lock another process holds (it is being built)
        is skipped; one in use was touched when its run began, so it is young.
        """
        removed = []
        envs = self.root / "envs"
        if not envs.is_dir():
            return removed
        from filelock import FileLock, Timeout

        cutoff = time.time() - max_age_days * 86400
        for path in sorted(envs.iterdir()):
            if path.is_symlink() or not path.is_dir() or _last_used(path) > cutoff:
                continue
            lock = FileLock(str(self.root / "locks" / f"{path.name}.lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue  # being built
            except OSError:
                continue  # its lock cannot be taken (a read-only cache, a directory in its place): leave it
            try:
                with _unused(self.root / "locks" / f"{path.name}.use") as unused:
                    if not unused or _last_used(path) > cutoff:
                        continue
                    size = _tree_size(path)
                    _remove(path)
                    for compiled in _bytecode_of(self.root, path):
                        _remove(compiled)
                    removed.append((path, size))
            finally:
                lock.release()
        return removed

    def _touch(self, path: Path) -> None:
        try:
            (path / LAST_USED).touch()
        except OSError:
            pass  # a read-only cache still works; it only cannot be pruned by age

    def _prepare_root(self) -> None:
        for sub in ("envs", "locks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        tag = self.root / "CACHEDIR.TAG"
        if not tag.exists():
            write_whole(self.root / ".gitignore", "*\n")
            write_whole(tag, _CACHEDIR_TAG)
        # a build that could not be logged would fail after all its work: find out first
        os.close(self._open_log())


@contextlib.contextmanager
def _unused(use_file: Path):
    """Yields whether no process holds the environment's "in use" lock, and keeps it that way meanwhile."""
    if fcntl is None or not use_file.exists():
        yield True
        return
    try:
        fd = os.open(use_file, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        yield False  # not a file we can lock: whoever put it there may be using the environment
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _inside(env: Path, relative: object) -> Path | None:
    """``env / relative`` when ``relative`` is a plain relative path that stays in ``env``; else None.

    A completion mark names the environment's interpreter relative to the
    environment; one that leads elsewhere (an absolute path, ``..``) would
    have us run a program the environment does not hold.
    """
    if not isinstance(relative, str) or not relative or "\0" in relative:
        return None
    parts = Path(relative).parts
    if Path(relative).is_absolute() or Path(relative).drive or ".." in parts:
        return None
    return env / relative


def _is_requirement(text: object) -> bool:
    from packaging.requirements import InvalidRequirement, Requirement

    if not isinstance(text, str):
        return False
    try:
        Requirement(text)
    except InvalidRequirement:
        return False
    return True



def _exit_words(returncode: int) -> str:
    if returncode < 0:
        try:
            number = signal.Signals(-returncode)
            return f"killed by {number.name}: {signal.strsignal(number)}"
        except ValueError:
            pass
    return f"exit code {returncode}"


def _last_used(path: Path) -> float:
    for name in (LAST_USED, MARK):
        try:
            return (path / name).stat().st_mtime
        except OSError:
            continue
    return path.stat().st_mtime


def _bytecode_of(root: Path, env: Path) -> set[Path]:
    """The environment's own parts of the shared bytecode tree, which mirrors absolute paths
    (as the child saw them: through a symlinked cache path, or not)."""
    return {root / PYCACHE / p.relative_to(p.anchor) for p in (env.absolute(), env.resolve())}


def _tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)
