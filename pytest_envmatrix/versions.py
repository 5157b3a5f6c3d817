"""Which releases of a package the configured index offers for an interpreter, and what a selector means.

An axis value may name a version by what is there rather than by number:
``current``, ``latest``, ``oldest``, ``minors:<specifier>`` (parsed in
:mod:`~pytest_envmatrix.matrix`). They are resolved here, once per run,
package and interpreter, from the same places the installer looks: the
``--envmatrix-index-url`` (else the user's ``UV_*``/``PIP_*`` index
variables, else PyPI) through its JSON simple API (PEP 691, falling back to
the HTML one of PEP 503), and each ``--envmatrix-find-links`` folder or page.
uv offers no command that lists the versions a package has (``uv pip
compile`` answers "which one would I pick", one at a time), and ``minors``
and bisect need them all.

A release counts when one of its files installs on the interpreter: a wheel
whose tags it supports and whose Requires-Python admits it, or an sdist
(which may build) whose Requires-Python admits it. Yanked files do not count.

What an index answered is kept in the cache directory (``versions/``) for
``envmatrix_versions_ttl`` hours, so a warm run asks nothing; when the index
cannot be reached, a kept answer of any age is used and the run says so.
Local folders are read afresh every time: they cost no request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from packaging import tags
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from .files import write_whole
from .installer import IndexOptions
from .matrix import Combination, Matrix, parse_selector

PYPI = "https://pypi.org/simple/"
#: Seconds one request to an index may take: an unreachable index must never hang the run.
LOOKUP_TIMEOUT = 15.0
# Bump when the layout of a cached answer changes: older ones are then ignored.
FORMAT_VERSION = 1
_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


class VersionLookupError(Exception):
    """A selector that cannot be resolved; the message says which and why."""


@dataclass(frozen=True)
class Target:
    """The interpreter a release must install on."""

    implementation: str  # "cpython", "pypy", ...
    version: tuple[int, int, int]

    @classmethod
    def running(cls) -> Target:
        return cls(sys.implementation.name, tuple(sys.version_info[:3]))

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    def supported_tags(self) -> frozenset[tags.Tag]:
        """The wheel tags this interpreter installs, computed without starting it (this machine's platform)."""
        if self.implementation == sys.implementation.name and self.version[:2] == tuple(sys.version_info[:2]):
            return frozenset(tags.sys_tags())
        short = self.version[:2]
        if self.implementation == "cpython":
            found = [*tags.cpython_tags(short), *tags.compatible_tags(short, f"cp{short[0]}{short[1]}")]
        else:
            found = list(tags.compatible_tags(short))  # another implementation: pure wheels only
        return frozenset(found)


@dataclass(frozen=True)
class OfferedFile:
    """One distribution file an index or folder offers."""

    filename: str
    requires_python: str | None = None
    yanked: bool = False


@dataclass(frozen=True)
class Sources:
    """Where the installer would look for a package."""

    index_urls: tuple[str, ...]  # none with --no-index
    find_links: tuple[str, ...]  # folders (absolute paths) and URLs

    @classmethod
    def of(cls, index: IndexOptions, installer: str, environ: Mapping[str, str] = os.environ) -> Sources:
        """The envmatrix options, then the installer's own variables (its configuration files are not read)."""
        prefix = "UV_" if installer == "uv" else "PIP_"
        no_index = index.no_index or _truthy(environ.get(prefix + "NO_INDEX", ""))
        find_links = list(index.find_links) + environ.get(prefix + "FIND_LINKS", "").split()
        urls: list[str] = []
        if not no_index:
            if index.index_url:
                urls.append(index.index_url)
            elif installer == "uv":
                # UV_INDEX holds "[name=]url" entries; UV_DEFAULT_INDEX replaces PyPI, as UV_INDEX_URL did
                urls += [entry.split("=", 1)[-1] if "=" in entry.split("://")[0] else entry for entry in environ.get("UV_INDEX", "").split()]
                urls.append(environ.get("UV_DEFAULT_INDEX") or environ.get("UV_INDEX_URL") or PYPI)
            else:
                urls.append(environ.get("PIP_INDEX_URL") or PYPI)
            urls += environ.get(prefix + "EXTRA_INDEX_URL", "").split()
        return cls(tuple(dict.fromkeys(urls)), tuple(dict.fromkeys(find_links)))


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def compatible_versions(files: Iterable[OfferedFile], package: str, target: Target, pre: bool) -> set[Version]:
    """The versions of ``package`` with at least one file that installs on ``target``."""
    name = canonicalize_name(package)
    supported = target.supported_tags()
    found: set[Version] = set()
    for offered in files:
        if offered.yanked:
            continue
        version = _version_of(offered.filename, name, supported)
        if version is None or version in found or (version.is_prerelease and not pre):
            continue
        if _admits(offered.requires_python, target):
            found.add(version)
    return found


def _version_of(filename: str, name: str, supported: frozenset) -> Version | None:
    """The file's version if it is a distribution of ``name`` for these tags; None otherwise."""
    try:
        if filename.endswith(".whl"):
            dist, version, _, file_tags = parse_wheel_filename(filename)
            return version if dist == name and not supported.isdisjoint(file_tags) else None
        if filename.endswith((".tar.gz", ".zip")):
            dist, version = parse_sdist_filename(filename)
            return version if dist == name else None
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None


def _admits(requires_python: str | None, target: Target) -> bool:
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(target.version_text, prereleases=True)
    except InvalidSpecifier:
        return True  # as the installers do: an unreadable Requires-Python excludes nothing


# ----------------------------------------------------------------------------- reading the sources


def folder_files(folder: Path, package: str) -> list[OfferedFile]:
    """A find-links folder's files of ``package``; a wheel's Requires-Python is read from its METADATA."""
    name = canonicalize_name(package)
    out = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    for path in entries:
        filename = path.name
        try:
            if filename.endswith(".whl"):
                if parse_wheel_filename(filename)[0] != name:
                    continue
                out.append(OfferedFile(filename, _wheel_requires_python(path)))
            elif filename.endswith((".tar.gz", ".zip")) and parse_sdist_filename(filename)[0] == name:
                out.append(OfferedFile(filename))
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            continue
    return out


def _wheel_requires_python(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as wheel:
            metadata = next((n for n in wheel.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), None)
            if metadata is None:
                return None
            text = wheel.read(metadata).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile, KeyError):
        return None
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line
        key, _, value = line.partition(":")
        if key.strip().lower() == "requires-python":
            return value.strip()
    return None


def fetch_files(url: str, timeout: float = LOOKUP_TIMEOUT) -> list[OfferedFile]:
    """The files a simple-API project page (JSON or HTML) or a find-links page lists; [] for a 404.

    Credentials in the URL (``https://user:token@host/simple``) are sent as
    basic authentication. Raises OSError (URLError, a timeout) when the
    index cannot be reached.
    """
    # imported here, not at the top: urllib.request brings ssl, http and email, a sixth of what importing
    # the plugin costs, and a run whose selectors the cache answers never asks an index
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    parts = urlsplit(url)
    headers = {"Accept": _ACCEPT, "User-Agent": "pytest-envmatrix"}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        parts = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))
    try:
        with urlopen(Request(urlunsplit(parts), headers=headers), timeout=timeout) as response:
            content_type = response.headers.get("Content-Type", "")
            body = response.read()
    except HTTPError as exc:
        if exc.code == 404:
            return []
        raise
    if "json" in content_type:
        data = json.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("files", []), list):
            raise ValueError("the index's answer is not a project page of the simple API")
        return [
            OfferedFile(entry["filename"], entry.get("requires-python"), bool(entry.get("yanked")))
            for entry in data.get("files", [])
            if isinstance(entry, dict) and isinstance(entry.get("filename"), str)
        ]
    parser = _Anchors()
    parser.feed(body.decode("utf-8", "replace"))
    return parser.files


class _Anchors(HTMLParser):
    """The links of a PEP 503 page, with their ``data-requires-python`` and ``data-yanked``."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[OfferedFile] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag != "a":
            return
        attributes = dict(attrs)
        href = attributes.get("href") or ""
        filename = unquote(urlsplit(href).path.rsplit("/", 1)[-1])
        if filename:
            yanked = "data-yanked" in attributes
            self.files.append(OfferedFile(filename, attributes.get("data-requires-python"), yanked))


# ----------------------------------------------------------------------------- the cache of answers


class AnswerCache:
    """What each index answered for each package, kept on disk and read back as untrusted input."""

    def __init__(self, root: Path) -> None:
        self.root = root / "versions"

    def _path(self, url: str) -> Path:
        return self.root / (hashlib.sha256(url.encode()).hexdigest() + ".json")

    def load(self, url: str) -> tuple[float, list[OfferedFile]] | None:
        """(when it was fetched, the files), or None when nothing usable is kept."""
        try:
            data = json.loads(self._path(url).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION or data.get("url") != url:
            return None
        fetched, entries = data.get("fetched"), data.get("files")
        if not isinstance(fetched, (int, float)) or isinstance(fetched, bool) or not isinstance(entries, list):
            return None
        files = []
        for entry in entries:
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
                return None
            if not (entry[1] is None or isinstance(entry[1], str)) or not isinstance(entry[2], bool):
                return None
            files.append(OfferedFile(*entry))
        return float(fetched), files

    def save(self, url: str, files: Sequence[OfferedFile]) -> None:
        """Keep an answer; a cache that cannot be written only costs the next run a request."""
        data = {"format": FORMAT_VERSION, "url": url, "fetched": time.time(), "files": [[f.filename, f.requires_python, f.yanked] for f in files]}
        path = self._path(url)
        write_whole(path, json.dumps(data), best_effort=True)


# ----------------------------------------------------------------------------- releases and selectors


@dataclass
class ReleaseFinder:
    """Lists releases from the configured sources, asking each index at most once per run and package."""

    sources: Sources
    cache: AnswerCache
    ttl_hours: float = 24.0
    refresh: bool = False
    timeout: float = LOOKUP_TIMEOUT
    notes: list[str] = field(default_factory=list)  # what the user should know: answers used offline
    requests: int = 0  # lookups sent to an index this run
    _files: dict[str, list[OfferedFile]] = field(default_factory=dict)

    def files(self, package: str) -> list[OfferedFile]:
        name = canonicalize_name(package)
        if name not in self._files:
            found: list[OfferedFile] = []
            for link in self.sources.find_links:
                if "://" in link and not link.startswith("file:"):
                    found += self._remote(link, name, link)
                else:
                    found += folder_files(_local_path(link), name)
            for index_url in self.sources.index_urls:
                found += self._remote(urljoin(index_url.rstrip("/") + "/", f"{name}/"), name, index_url)
            self._files[name] = found
        return self._files[name]

    def releases(self, package: str, target: Target, pre: bool = False) -> list[Version]:
        """Every release of ``package`` that installs on ``target``, oldest first."""
        return sorted(compatible_versions(self.files(package), package, target, pre))

    def _remote(self, url: str, name: str, shown: str) -> list[OfferedFile]:
        kept = self.cache.load(url)
        if kept is not None and not self.refresh and time.time() - kept[0] < self.ttl_hours * 3600:
            return kept[1]
        try:
            self.requests += 1
            files = fetch_files(url, self.timeout)
        except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors; ValueError: a page that is not JSON
            reason = getattr(exc, "reason", None) or exc
            if kept is None:
                raise VersionLookupError(
                    f"could not list the releases of {name} at {_public(shown)}: {reason}, and no earlier answer is cached"
                ) from None
            age = (time.time() - kept[0]) / 3600
            self.notes.append(
                f"envmatrix: could not reach {_public(shown)} ({reason}): using the releases of {name} it listed {age:.1f} hours ago"
            )
            return kept[1]
        self.cache.save(url, files)
        return files


def _local_path(link: str) -> Path:
    if link.startswith("file:"):
        from urllib.request import url2pathname

        return Path(url2pathname(urlsplit(link).path))
    return Path(link)


def _public(url: str) -> str:
    """A URL as it may be shown: without its credentials."""
    parts = urlsplit(url)
    if parts.username is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))


def installed_version(package: str) -> str | None:
    """The version installed where pytest runs, or None."""
    from importlib.metadata import PackageNotFoundError, version

    for name in dict.fromkeys((package, package.replace("-", "_"))):  # Python 3.9 does not normalize names itself
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def project_requirement(requirements: Sequence[str] | None, package: str, target: Target) -> SpecifierSet | None:
    """The project's own specifier on ``package`` for ``target`` (its applicable requirements combined)."""
    name = canonicalize_name(package)
    environment = {"python_version": ".".join(map(str, target.version[:2])), "python_full_version": target.version_text}
    combined = SpecifierSet()
    found = False
    for text in requirements or ():
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) != name:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({**environment, "extra": ""}):
            continue
        combined &= requirement.specifier
        found = True
    return combined if found else None


@dataclass
class Resolver:
    """Turns each selector of a matrix into versions, once per package, selector and interpreter."""

    finder: ReleaseFinder
    pre: bool = False
    project_requirements: Sequence[str] | None = None  # the project's [project].dependencies; None: no project
    target_of: object = None  # python request → Target (the session's interpreter discovery); None: the running one
    resolved: dict[tuple[str, str, str | None], list[str]] = field(default_factory=dict)
    _failed: dict[tuple[str, str, str | None], str] = field(default_factory=dict)  # key → why it could not be resolved

    def resolve_matrix(self, matrix: Matrix) -> dict[tuple[str, str, str | None], list[str]]:
        """The versions of each of the matrix's selectors; VersionLookupError names the first that fails."""
        out = {}
        for canonical, text, python in matrix.selectors():
            out[(canonical, text, python)] = self.resolve(canonical, text, python)
        return out

    def resolve(self, package: str, text: str, python: str | None = None) -> list[str]:
        key = (canonicalize_name(package), text, python)
        if key in self._failed:  # asked once per run: an unreachable index costs its time limit once
            raise VersionLookupError(self._failed[key])
        if key not in self.resolved:
            target = self.target_of(python) if callable(self.target_of) else Target.running()
            try:
                versions = self._resolve(key[0], text, target)
            except VersionLookupError as exc:
                self._failed[key] = f"{key[0]} {text!r}: {exc}"
                raise VersionLookupError(self._failed[key]) from None
            self.resolved[key] = [str(v) for v in versions]
        return self.resolved[key]

    def _resolve(self, package: str, text: str, target: Target) -> list[Version | str]:
        selector = parse_selector(text)
        if selector is None:
            raise VersionLookupError("not a version selector")
        if selector.kind == "current":
            version = installed_version(package)
            if version is None:
                raise VersionLookupError(f"that is the version installed where pytest runs ({sys.prefix}), and {package} is not installed there")
            return [version]
        releases = self.finder.releases(package, target, self.pre)
        where = f"for Python {target.version_text}" + ("" if self.pre else " (pre-releases left out: --envmatrix-pre)")
        if selector.kind == "latest":
            if not releases:
                raise VersionLookupError(f"no release of {package} installs {where}, in {self._places()}")
            return [releases[-1]]
        if selector.kind == "oldest":
            specifier = project_requirement(self.project_requirements, package, target)
            if specifier is None:
                what = "the project under test has none" if self.project_requirements is not None else "there is no project under test (envmatrix_project)"
                raise VersionLookupError(
                    f"that is the lowest release the project's own requirement on {package} allows, and {what} in its [project].dependencies"
                )
            allowed = [v for v in releases if specifier.contains(v, prereleases=self.pre)]
            if not allowed:
                raise VersionLookupError(f"no release allowed by the project's {package}{specifier} installs {where}, in {self._places()}")
            return [allowed[0]]
        newest: dict[tuple[int, int], Version] = {}
        for version in releases:
            if selector.specifier.contains(version, prereleases=self.pre):
                newest[(version.release + (0,))[:2]] = version  # ascending: the last one of a series is its newest
        if not newest:
            raise VersionLookupError(f"no release in that range installs {where}, in {self._places()}")
        return sorted(newest.values())

    def _places(self) -> str:
        sources = self.finder.sources
        places = [_public(url) for url in sources.index_urls] + list(sources.find_links)
        return ", ".join(places) or "no index and no find-links"

    def lines(self) -> list[str]:
        """What each selector resolved to, for ``--envmatrix-list``."""
        out = []
        for (package, text, python), versions in self.resolved.items():
            on = f" (python {python})" if python else ""
            out.append(f"  {package} {text}{on} -> {', '.join(versions)}")
        return out


def resolver_for_run(
    index: IndexOptions, installer: str, cache_dir: Path, ttl_hours: float, refresh: bool, pre: bool,
    project_requirements: Sequence[str] | None,
) -> Resolver:
    """One resolver for the run: each package's releases are read once, for every test and axis."""
    from .interpreters import InterpreterFinder

    finder = ReleaseFinder(Sources.of(index, installer), AnswerCache(cache_dir), ttl_hours, refresh)
    interpreters = InterpreterFinder()
    return Resolver(finder, pre, project_requirements, lambda request: target_for(request, interpreters.find))


def target_for(request: str | None, find) -> Target:
    """The interpreter a python request names: found by ``find`` (the session's discovery), else read from the request.

    A request this machine lacks still gets its versions (its items skip
    when they would be built), so resolution never fails for that alone.
    """
    if request is None:
        return Target.running()
    try:
        interpreter = find(request)
        return Target(interpreter.implementation, tuple(int(part) for part in interpreter.version.split(".")[:3]))
    except Exception:
        pass
    match = re.match(r"([A-Za-z]*)(\d)(?:\.?(\d+))?(?:\.(\d+))?", request)
    if match is None:
        return Target.running()
    implementation = "pypy" if match[1].lower() == "pypy" else "cpython"
    return Target(implementation, (int(match[2]), int(match[3] or 0), int(match[4] or 0)))


def combinations(resolver: Resolver | None, matrix: Matrix, deps: Sequence[str]) -> tuple[list[Combination], str | None]:
    """The matrix's combinations with its selectors resolved; or, when one cannot be, the unresolved ones and why.

    The unresolved combinations keep the selector in their ids
    (``numpy-latest``), so their items can error with the reason.
    """
    if resolver is None or not matrix.selectors():
        return matrix.combinations(deps), None
    try:
        resolved = resolver.resolve_matrix(matrix)
    except VersionLookupError as exc:
        return matrix.combinations(deps), f"envmatrix: could not resolve {exc}"
    return matrix.combinations(deps, resolved), None
