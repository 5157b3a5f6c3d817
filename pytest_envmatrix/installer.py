"""The installers that fill an environment: uv when it is there, pip otherwise.

Requirements always travel as separate arguments, never through a shell. The
user's own installer settings (pip.conf, ``PIP_*``, ``UV_*``) are left in
force; the ``--envmatrix-*`` index options and uv's link mode (which the
cache key records) are added on top of them.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .package_index import PackageIndex, applicable, sources_pyproject, split_requirements


@dataclass(frozen=True)
class IndexOptions:
    index_url: str | None = None
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    package_indexes: tuple[PackageIndex, ...] = ()  # packages with an index of their own (uv only)
    torch_backend: str | None = None  # uv's --torch-backend

    def for_requirements(self, requirements: Sequence[str]) -> tuple[PackageIndex, ...]:
        return applicable(self.package_indexes, requirements)

    def args(self) -> list[str]:
        out = []
        if self.index_url:
            out += ["--index-url", self.index_url]
        for link in self.find_links:
            out += ["--find-links", link]
        if self.no_index:
            out.append("--no-index")
        return out


#: How uv puts a package from its cache into an environment (``uv pip install --link-mode``).
LINK_MODES = ("copy", "hardlink", "clone", "symlink")


@dataclass(frozen=True)
class Installer:
    """``link_mode`` is uv's; the default, ``copy``, keeps each environment's files its own.

    With hard links (uv's own default) or symlinks, a test that writes an
    installed file in place writes it in uv's cache too, and so in every
    environment, of any project, linked from it. pip always copies.
    """

    name: str  # "uv" or "pip"
    executable: str | None = None  # the uv binary; pip runs from inside the environment
    link_mode: str = "copy"
    shared_packages: tuple[str, ...] = ()  # canonical names whose files stay hard-linked to uv's cache (uv only)

    @property
    def effective_link_mode(self) -> str:
        """What the environment's files are: pip copies whatever was asked."""
        return self.link_mode if self.name == "uv" else "copy"

    @property
    def makes_private(self) -> bool:
        """Whether hard links left by uv are replaced by copies after the install (see disk.make_private).

        ``clone`` falls back to hard links, without a word, where the
        filesystem cannot clone (ext4, tmpfs): the copies keep its promise
        that a write stays in its environment. With shared packages uv links
        everything, and every other package gets its own copies.
        """
        return self.name == "uv" and self.link_mode in ("copy", "clone") and (self.link_mode == "clone" or bool(self.shared_packages))

    @property
    def install_link_mode(self) -> str:
        """What uv is told: hard links when some packages are to be shared and the rest copied afterwards."""
        return "hardlink" if self.link_mode == "copy" and self.makes_private else self.link_mode

    @property
    def shared(self) -> tuple[str, ...]:
        """The shared packages that take effect: none where every file is linked, or copied, anyway."""
        return self.shared_packages if self.makes_private else ()

    @property
    def needs_seed(self) -> bool:
        """pip must live in the environment it installs into; uv installs from outside."""
        return self.name == "pip"

    def venv_command(self, interpreter: str, path: str) -> list[str] | None:
        """How this installer creates an environment, or None to let virtualenv do it.

        ``uv venv`` takes a tenth of virtualenv's time and seeds nothing,
        which is all uv mode needs; pip mode needs pip seeded, so virtualenv.
        ``--no-project`` keeps a ``pyproject.toml`` in the current directory
        from having a say in how the environment is made.
        """
        if self.name != "uv":
            return None
        return [self.executable or "uv", "venv", "--quiet", "--no-project", "--python", interpreter, path]

    def command(
        self,
        python: str,
        requirements: Sequence[str],
        editable: str | None,
        index: IndexOptions,
        scratch: Path | None = None,
        uncached: Sequence[str] = (),
        sources_dir: Path | None = None,
    ) -> list[str]:
        """One install command, so the project, its dependencies and the pins resolve together.

        With ``scratch`` (a folder to write in), uv may take the project's
        editable build from its cache: see :meth:`project_args`. ``uncached``
        names distributions to install again without uv's cache: an entry
        damaged in place (through a hard link) looks valid to uv, and neither
        ``--reinstall`` nor ``--refresh`` replaces it (see integrity.py).
        The requirements of packages with an index of their own go into a
        ``pyproject.toml`` written in ``sources_dir`` (see package_index.py).
        """
        own_index = index.for_requirements(requirements) if self.name == "uv" else ()
        if own_index:
            if sources_dir is None:
                raise ValueError("a package index needs a folder to write its sources file in")
            pinned, requirements = split_requirements(own_index, requirements)
            sources_dir.mkdir(parents=True, exist_ok=True)
            (sources_dir / "pyproject.toml").write_text(sources_pyproject(own_index, pinned), encoding="utf-8")
            requirements = ["-r", str(sources_dir / "pyproject.toml"), *requirements]
        targets = [*(self.project_args(editable, scratch) if editable else []), *requirements]
        if self.name == "uv":
            again = ["--no-cache", *(arg for name in uncached for arg in ("--reinstall-package", name))] if uncached else []
            backend = ["--torch-backend", index.torch_backend] if index.torch_backend else []
            return [
                self.executable or "uv", "pip", "install", "--python", python, "--link-mode", self.install_link_mode,
                *again, *backend, *index.args(), *targets,
            ]
        # no byte-compiling at install: the child compiles what it imports, once (see runner.child_environment)
        return [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--no-compile", *index.args(), *targets]

    def compiled_project_command(self, python: str, source: str, requirements: Sequence[str], index: IndexOptions) -> list[str]:
        """Build ``source`` (a compiled project's private copy) in the environment and install it as a regular wheel.

        Without build isolation, the build sees what the environment holds,
        which the previous commands filled with the pins and the build
        requirements: an extension is compiled against the combination's
        headers, not against those of an isolated build environment's newest
        release. The requirements come again, so the project's dependencies
        resolve with the pins.
        """
        if self.name == "uv":
            own_index = index.for_requirements(requirements)
            if own_index:  # installed already, from their own index: named again here, they would come from the others
                _, requirements = split_requirements(own_index, requirements)
            return [
                self.executable or "uv", "pip", "install", "--python", python, "--link-mode", self.link_mode,
                "--no-build-isolation", *index.args(), source, *requirements,
            ]
        return [
            python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--no-compile",
            "--no-build-isolation", *index.args(), source, *requirements,
        ]

    def project_args(self, editable: str, scratch: Path | None) -> list[str]:
        """How the project under test is named to the installer.

        uv rebuilds a directory named on its command line every time, but
        takes one named in a requirements file from its cache, which it keys
        on the mtimes of ``pyproject.toml``, ``setup.py`` and ``setup.cfg``
        (``tool.uv.cache-keys`` adds more). Rebuilding the editable wheel was
        most of the cost of filling a new environment from a warm cache.
        An environment's key changes with those same files, so a new
        environment gets the build that the cached ones already hold.
        pip keeps no such cache; ``scratch=None`` asks for a fresh build.
        """
        if self.name != "uv" or scratch is None:
            return ["-e", editable]
        requirements = scratch / "envmatrix-project.txt"
        requirements.write_text(f"-e {Path(editable).as_uri()}\n", encoding="utf-8")
        return ["-r", str(requirements)]


def find_uv() -> str | None:
    """uv from its Python package (the ``uv`` extra) or from PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def resolve_installer(choice: str, link_mode: str = "copy", shared_packages: tuple[str, ...] = ()) -> Installer:
    """``auto`` prefers uv; asking for uv where there is none is a usage error."""
    if choice not in ("auto", "uv", "pip"):
        raise ValueError(f"envmatrix installer must be auto, uv or pip, not {choice!r}")
    if choice == "pip":
        return Installer("pip", link_mode=link_mode, shared_packages=shared_packages)
    uv = find_uv()
    if uv:
        return Installer("uv", uv, link_mode, shared_packages)
    if choice == "uv":
        raise ValueError("envmatrix installer 'uv' was asked for, but uv is neither importable nor on PATH (pip install 'pytest-envmatrix[uv]')")
    return Installer("pip", link_mode=link_mode, shared_packages=shared_packages)
