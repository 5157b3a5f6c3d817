"""From ``envmatrix`` markers to the combinations a test runs in.

Pure: no I/O, no processes. Everything the marker promises (axes, the
cartesian product, ``deps``, ``python``, ``exclude``, merging of module, class
and function markers, item ids) is decided here, so it can be tested without
building a single environment.
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

PYTHON_AXIS = "python"

#: Axis values that name a version by what the index offers or what is installed, resolved before the run
#: (see :mod:`~pytest_envmatrix.versions`); ``minors:<specifier>`` is the fourth form.
SELECTORS = ("current", "latest", "oldest")
MINORS = "minors:"


class MarkerError(ValueError):
    """An ``envmatrix`` marker that cannot be honoured; the message names the bad value."""


def canonical_requirement(text: str) -> str:
    """The one spelling of a requirement used for grouping and cache keys.

    Two strings that ask for the same thing (``Scikit_Learn>=1`` and
    ``scikit-learn >= 1``) give the same result; ``hash()`` of a Requirement
    object would not survive across processes.
    """
    req = Requirement(text)
    out = canonicalize_name(req.name)
    if req.extras:
        out += "[" + ",".join(sorted(canonicalize_name(e) for e in req.extras)) + "]"
    if req.url:
        out += f" @ {req.url}"
        if req.marker:
            out += " "
    else:
        out += str(req.specifier)
    if req.marker:
        out += f"; {req.marker}"
    return out


@dataclass(frozen=True)
class Selector:
    """A version selector as written on an axis: ``latest``, or ``minors`` with its range."""

    text: str
    kind: str  # "current", "latest", "oldest" or "minors"
    specifier: SpecifierSet | None = None  # the range of ``minors:``


def parse_selector(text: str) -> Selector | None:
    """The selector ``text`` spells, or None when it is not one; a ``minors:`` without a valid range raises ValueError."""
    text = text.strip()
    if text in SELECTORS:
        return Selector(text, text)
    if text.startswith(MINORS):
        spec = text[len(MINORS):].strip()
        if not spec:
            raise ValueError(f"{text!r} needs a range of versions, e.g. 'minors:>=1.24,<2.3'")
        try:
            return Selector(text, "minors", SpecifierSet(spec))
        except InvalidSpecifier:
            raise ValueError(f"{text!r}: {spec!r} is not a version specifier (e.g. 'minors:>=1.24,<2.3')") from None
    return None


#: (canonical package name, selector as written, python request or None) → the versions it stands for
Resolved = Mapping[tuple[str, str, "str | None"], Sequence[str]]


@dataclass(frozen=True)
class Pin:
    """One package axis at one value, e.g. ``numpy`` at ``1.26.4``."""

    name: str  # as written in the marker: it is what the user sees in item ids
    canonical: str
    value: str  # as written, or the version a selector resolved to
    requirement: str
    selector: str | None = None  # the selector as written, when ``value`` was resolved from one

    @property
    def id(self) -> str:
        return f"{self.name}-{self.value}"


@dataclass(frozen=True)
class EnvSpec:
    """What one environment must hold. Equal specs share one environment."""

    python: str | None  # interpreter request, e.g. "3.12"; None: the interpreter running pytest
    requirements: tuple[str, ...]  # canonical and sorted
    # a name for messages where the requirements are too many to list (the upgrade check's environments);
    # compared too: two environments of one run with the same contents stay two groups of items
    title: str = ""

    @property
    def label(self) -> str:
        """A short human name for messages: ``py3.12 numpy==1.26.4``."""
        if self.title:
            return self.title
        parts = [python_id(self.python)] if self.python else []
        parts.extend(self.requirements)
        return " ".join(parts) or "(no requirements)"

    def names(self) -> set[str]:
        return {canonicalize_name(Requirement(r).name) for r in self.requirements}


@dataclass(frozen=True)
class Combination:
    """One cell of a test's matrix."""

    pins: tuple[Pin, ...]  # sorted by canonical name
    python: str | None
    env: EnvSpec

    @property
    def id(self) -> str:
        parts = [python_id(self.python)] if self.python else []
        parts.extend(pin.id for pin in self.pins)
        return "-".join(parts)

    def values(self) -> dict[str, str]:
        """The combination as the test may see it: axis name as written → value."""
        out = {pin.name: pin.value for pin in self.pins}
        if self.python:
            out[PYTHON_AXIS] = self.python
        return out


def python_id(request: str) -> str:
    return f"py{request}" if request[:1].isdigit() else request


@dataclass(frozen=True)
class Axis:
    name: str
    canonical: str
    values: tuple[str, ...]


@dataclass
class Matrix:
    """The merged markers of one test function."""

    where: str = ""  # the test, for error messages
    axes: dict[str, Axis] = field(default_factory=dict)  # canonical name → axis
    python: tuple[str, ...] | None = None
    deps: list[str] = field(default_factory=list)
    exclude: list[dict[str, object]] = field(default_factory=list)
    # axes whose value a test's marker cannot narrow (a bisect probe's package: every test runs at its version)
    forced: frozenset[str] = frozenset()

    def selectors(self) -> list[tuple[str, str, str | None]]:
        """What must be resolved before :meth:`combinations` can give concrete versions.

        One (canonical name, selector as written, python request) per
        selector and interpreter: ``latest`` may differ between interpreters.
        """
        pythons: Sequence[str | None] = self.python or (None,)
        return [
            (axis.canonical, value, python)
            for axis in sorted(self.axes.values(), key=lambda a: a.canonical)
            for value in axis.values
            if parse_selector(value) is not None
            for python in pythons
        ]

    def combinations(self, base_deps: Sequence[str] = (), resolved: Resolved | None = None) -> list[Combination]:
        """The cartesian product of the axes, less the excluded combinations.

        ``base_deps`` are requirement lines every environment gets (the
        ``envmatrix_deps`` ini option), already validated by the caller.
        ``resolved`` gives the versions of each of :meth:`selectors`; a
        selector it lacks stays as written, with a requirement on the bare
        name (enough to check a marker, not to build its environments). Two
        values that come to the same version (``latest`` and the version it
        is) make one combination.
        """
        axes = sorted(self.axes.values(), key=lambda a: a.canonical)
        pythons: Sequence[str | None] = self.python or (None,)
        sourced = [("ini option envmatrix_deps", r) for r in base_deps] + [("envmatrix deps", r) for r in self.deps]
        fixed = [canonical_requirement(r) for _, r in sourced]
        unmarked = [(source, text, r) for source, text in sourced if (r := Requirement(text)).marker is None]
        _check_exact_pins(unmarked, self.where)
        on_axes = [entry for entry in unmarked if canonicalize_name(entry[2].name) in self.axes]
        result = []
        excluded = 0
        for python in pythons:
            columns = [_axis_pins(axis, python, resolved or {}) for axis in axes]
            for pins in itertools.product(*columns):
                if self._excluded(pins, python):
                    excluded += 1
                    continue
                requirements = tuple(sorted({*fixed, *(pin.requirement for pin in pins)}))
                result.append(Combination(pins, python, EnvSpec(python, requirements)))
        if not result:
            # pytest would report the test as skipped ("got empty parameter set"), and exit 0
            raise MarkerError(
                f"{self.where}: envmatrix exclude rules leave no combination (they exclude all {excluded}); "
                f"remove the marker or loosen the rules"
            )
        seen: dict[EnvSpec, Combination] = {}
        ids: dict[str, Combination] = {}
        for combination in result:
            other = seen.setdefault(combination.env, combination)
            if other is not combination:
                raise MarkerError(
                    f"{self.where}: envmatrix combinations {other.id!r} and {combination.id!r} ask for the same "
                    f"environment ({combination.env.label}); list each version once"
                )
            other = ids.setdefault(combination.id, combination)
            if other is not combination:
                # pytest would number the items apart, and the child, given one id, would not find them
                raise MarkerError(
                    f"{self.where}: envmatrix combinations {other.id!r} and {combination.id!r} have the same id "
                    f"(python {other.python!r} and {combination.python!r}); write each python value one way"
                )
            _check_deps_against_pins(combination, on_axes, self.where)
        return result

    def _excluded(self, pins: tuple[Pin, ...], python: str | None) -> bool:
        """A rule may name a pin by its version or by the selector it came from."""
        current = {pin.canonical: {value_key(pin.value), value_key(pin.selector or pin.value)} for pin in pins}
        if python is not None:
            current[PYTHON_AXIS] = {python}
        return any(all(v in current.get(k, ()) for k, v in rule.items()) for rule in self.exclude)


def _axis_pins(axis: Axis, python: str | None, resolved: Resolved) -> list[Pin]:
    """The axis's pins for one interpreter: each selector replaced by its versions, each version once."""
    pins: dict[object, Pin] = {}
    for value in axis.values:
        if parse_selector(value) is None:
            pins.setdefault(value_key(value), Pin(axis.name, axis.canonical, value, _pin_requirement(axis.canonical, value)))
            continue
        versions = resolved.get((axis.canonical, value, python))
        if versions is None:
            pins.setdefault(value, Pin(axis.name, axis.canonical, value, axis.canonical, selector=value))
            continue
        for version in versions:
            pin = Pin(axis.name, axis.canonical, version, _pin_requirement(axis.canonical, version), selector=value)
            pins.setdefault(value_key(version), pin)
    return list(pins.values())


def _check_exact_pins(requirements: Sequence[tuple[str, str, Requirement]], where: str) -> None:
    """Two requirements on one package that no version satisfies, where one pins an exact version.

    ``attrs==23.2.0`` in a module's deps and ``attrs>=24`` in a test's: every
    environment of the test would fail to install. Ranges against ranges are
    left to the installer.
    """
    for source, text, requirement in requirements:
        specifiers = list(requirement.specifier)
        if requirement.url or len(specifiers) != 1 or specifiers[0].operator != "==" or "*" in specifiers[0].version:
            continue
        version = Version(specifiers[0].version)
        name = canonicalize_name(requirement.name)
        for other_source, other_text, other in requirements:
            if canonicalize_name(other.name) != name or other is requirement or not other.specifier:
                continue
            if not other.specifier.contains(version, prereleases=True):
                raise MarkerError(
                    f"{where}: {other_source}: {other_text!r} excludes {name} {version}, which {source}: {text!r} "
                    f"pins: no environment of this test could ever be installed"
                )


def _check_deps_against_pins(combination: Combination, on_axes: Sequence[tuple[str, str, Requirement]], where: str) -> None:
    """A requirement on an axis package that the combination's exact version cannot satisfy.

    The environment could never be installed: the installer would fail at
    build time, after everything else was built. Only what can be decided
    here is checked: exact axis values against the requirements (given with
    their source) that have no environment marker, which applies or not
    on the target interpreter.
    """
    pinned = {pin.canonical: pin for pin in combination.pins}
    for source, text, requirement in on_axes:
        pin = pinned[canonicalize_name(requirement.name)]
        if requirement.url:
            raise MarkerError(
                f"{where}: {source}: {text!r} installs {pin.canonical} from a URL, which conflicts with the axis "
                f"{pin.name!r}; put the URL in deps only, without the axis"
            )
        try:
            version = Version(pin.value)
        except InvalidVersion:
            continue  # a specifier on the axis: left to the installer
        if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            raise MarkerError(
                f"{where}: {source}: {text!r} excludes {pin.canonical} {pin.value} (combination {combination.id!r}): "
                f"that environment could never be installed; drop the version from the axis or loosen the requirement"
            )


def build_matrix(marks: Iterable[tuple[tuple, Mapping]], where: str) -> Matrix:
    """Merge markers given closest first (function, class, module).

    Axes combine; for the same package (or ``python``) the closest marker wins.
    ``deps`` and ``exclude`` accumulate. ``where`` names the test in errors.
    """
    matrix = Matrix(where=where)
    for args, kwargs in marks:
        axes, python, deps, exclude = _parse_one(args, kwargs, where)
        for canonical, axis in axes.items():
            matrix.axes.setdefault(canonical, axis)
        if python is not None and matrix.python is None:
            matrix.python = python
        matrix.deps.extend(deps)
        matrix.exclude.extend(exclude)
    for rule in matrix.exclude:
        for key in rule:
            if key != PYTHON_AXIS and key not in matrix.axes:
                known = ", ".join(sorted(a.name for a in matrix.axes.values()) + ([PYTHON_AXIS] if matrix.python else []))
                raise MarkerError(f"{where}: envmatrix exclude names axis {key!r}, which the matrix does not have (axes: {known or 'none'})")
            if key == PYTHON_AXIS and matrix.python is None:
                raise MarkerError(f"{where}: envmatrix exclude names axis 'python', but no marker sets python=[...]")
    return matrix


def _parse_one(args: tuple, kwargs: Mapping, where: str):
    named: dict[str, object] = {}
    for arg in args:
        if not isinstance(arg, Mapping):
            raise MarkerError(
                f"{where}: envmatrix takes axes as keywords or a dict of name → versions, not {arg!r}"
            )
        for key, value in arg.items():
            if not isinstance(key, str):
                raise MarkerError(f"{where}: envmatrix package name must be a string, not {key!r}")
            if key in named:
                raise MarkerError(f"{where}: envmatrix axis {key!r} is given twice")
            named[key] = value
    for key, value in kwargs.items():
        if key in named:
            raise MarkerError(f"{where}: envmatrix axis {key!r} is given twice")
        named[key] = value

    axes: dict[str, Axis] = {}
    python = None
    deps: list[str] = []
    exclude: list[dict[str, str]] = []
    for key, value in named.items():
        if key == "deps":
            deps = _parse_deps(value, where)
        elif key == "exclude":
            exclude = _parse_exclude(value, where)
        elif key == PYTHON_AXIS:
            python = _parse_python(value, where)
        else:
            if key in kwargs:
                _reject_near_keyword(key, where)
            canonical = _canonical_name(key, where)
            if canonical in axes:
                raise MarkerError(
                    f"{where}: envmatrix axis {key!r} is the same package as {axes[canonical].name!r} (names compare canonicalized)"
                )
            axes[canonical] = Axis(key, canonical, _parse_versions(key, canonical, value, where))
    return axes, python, deps, exclude


def _reject_near_keyword(key: str, where: str) -> None:
    """``excludes=`` or ``dep=`` would otherwise silently become a package axis."""
    close = difflib.get_close_matches(key.lower(), ("deps", "exclude", PYTHON_AXIS), n=1, cutoff=0.7)
    if close:
        raise MarkerError(
            f"{where}: envmatrix got unknown keyword {key!r}; did you mean {close[0]!r}? "
            f"(a package of that name goes in the dict form: envmatrix({{{key!r}: [...]}}))"
        )


def _canonical_name(name: str, where: str) -> str:
    try:
        return canonicalize_name(name, validate=True)
    except InvalidName:
        raise MarkerError(f"{where}: envmatrix axis {name!r} is not a valid distribution name") from None


def _as_list(value: object, what: str, where: str, of: str = "strings") -> list:
    if isinstance(value, str) and of == "strings":
        return [value]
    if not isinstance(value, (list, tuple)):
        raise MarkerError(f"{where}: envmatrix {what} must be a list of {of}, not {value!r}")
    if not value:
        raise MarkerError(f"{where}: envmatrix {what} is an empty list")
    return list(value)


def _parse_versions(name: str, canonical: str, value: object, where: str) -> tuple[str, ...]:
    seen: dict[object, str] = {}
    for item in _as_list(value, f"axis {name!r}", where):
        if not isinstance(item, str):
            raise MarkerError(
                f"{where}: envmatrix axis {name!r}: value {item!r} is a {type(item).__name__}, "
                f"not a string (write {str(item)!r})"
            )
        text = item.strip()
        try:
            selector = parse_selector(text)
        except ValueError as exc:
            raise MarkerError(f"{where}: envmatrix axis {name!r}: {exc}") from None
        if selector is not None:
            if text in seen:
                raise MarkerError(f"{where}: envmatrix axis {name!r}: {item!r} repeats {seen[text]!r}")
            seen[text] = text
            continue
        try:
            requirement = _pin_requirement(canonical, text)
        except (InvalidSpecifier, InvalidRequirement, ValueError):
            raise MarkerError(
                f"{where}: envmatrix axis {name!r}: {item!r} is neither a version (e.g. '1.26.4'), "
                f"a version specifier (e.g. '>=2,<2.2') nor a selector ('current', 'latest', 'oldest', 'minors:>=1.24')"
            ) from None
        if "===" in requirement:
            # legal PEP 440, but it compares strings ('===1.0' does not match 1.0.0), and uv and pip
            # do not agree on it: a value that works with one installer fails with the other
            raise MarkerError(
                f"{where}: envmatrix axis {name!r}: {item!r} uses arbitrary equality ('==='), which compares "
                f"version strings as text and which installers treat differently; write {item.replace('===', '==')!r}"
            )
        key = value_key(text)
        if key in seen:
            raise MarkerError(f"{where}: envmatrix axis {name!r}: {item!r} repeats {seen[key]!r}")
        seen[key] = text
    return tuple(seen.values())


def _pin_requirement(canonical: str, value: str) -> str:
    if not value:
        raise ValueError("empty")
    try:
        return f"{canonical}=={Version(value)}"
    except InvalidVersion:
        return f"{canonical}{SpecifierSet(value)}"


def value_key(value: str) -> object:
    """Compare values as the installer would: ``1.0`` equals ``1.0.0``."""
    value = value.strip()
    try:
        return Version(value)
    except InvalidVersion:
        try:
            return str(SpecifierSet(value))
        except InvalidSpecifier:
            return value


# What virtualenv's discovery understands as an interpreter request, written the usual ways:
# an implementation (optional), a version of one to three parts, then its build modifiers
# (free-threaded "t", debug "d", "-64", "-arm64"). Version specifiers are left out: each value
# of the axis is one interpreter.
_PYTHON_REQUEST = re.compile(
    r"(?P<implementation>[A-Za-z]+)?"
    r"(?P<version>[0-9]+(?:\.[0-9]+){0,2})"
    r"t?(?:d|-dbg|-debug)?(?:-(?:32|64))?(?:-[A-Za-z0-9_]+)?"
)
_IMPLEMENTATIONS = ("python", "py", "cpython", "pypy", "graalpy")


def _parse_python(value: object, where: str) -> tuple[str, ...]:
    out = []
    for item in _as_list(value, "python", where):
        if not isinstance(item, str) or not item.strip():
            raise MarkerError(f"{where}: envmatrix python: {item!r} is not an interpreter version like '3.12'")
        request = item.strip()
        if not _is_interpreter_request(request):
            raise MarkerError(
                f"{where}: envmatrix python: {item!r} is not an interpreter request: write a version ('3.12', "
                f"'3.12.1', '3.13t'), an implementation and version ('cpython3.12', 'pypy3.10'), or an absolute "
                f"path to an interpreter"
            )
        if request in out:
            raise MarkerError(f"{where}: envmatrix python: {item!r} is listed twice")
        out.append(request)
    return tuple(out)


def _is_interpreter_request(request: str) -> bool:
    """Checked by its form only: whether this machine has it is known when the run needs it."""
    if os.path.isabs(request):
        return not any(mark in request for mark in ("[", "]", "::"))  # they would break the item ids
    match = _PYTHON_REQUEST.fullmatch(request)
    if match is None:
        return False
    implementation = match["implementation"]
    return implementation is None or implementation.lower() in _IMPLEMENTATIONS


def _parse_deps(value: object, where: str) -> list[str]:
    out = []
    for item in _as_list(value, "deps", where):
        if not isinstance(item, str):
            raise MarkerError(f"{where}: envmatrix deps: {item!r} is not a requirement string")
        try:
            Requirement(item)
        except InvalidRequirement as exc:
            raise MarkerError(f"{where}: envmatrix deps: {item!r} is not a valid requirement ({exc})") from None
        out.append(item)
    return out


def _parse_exclude(value: object, where: str) -> list[dict[str, object]]:
    if isinstance(value, Mapping):
        value = [value]
    rules = []
    for rule in _as_list(value, "exclude", where, of="dicts"):
        if not isinstance(rule, Mapping) or not rule:
            raise MarkerError(f"{where}: envmatrix exclude: each entry must be a non-empty dict of axis → value, not {rule!r}")
        parsed = {}
        for key, val in rule.items():
            if not isinstance(key, str) or not isinstance(val, str):
                raise MarkerError(f"{where}: envmatrix exclude: {key!r}: {val!r} must map an axis name to a string value")
            name = PYTHON_AXIS if key == PYTHON_AXIS else _canonical_name(key, where)
            parsed[name] = val.strip() if name == PYTHON_AXIS else value_key(val)
        rules.append(parsed)
    return rules


def check_pytest_runs(combinations: Iterable[Combination], pytest_version: str, requires_python: str | None, where: str) -> None:
    """A python value that cannot run the pytest every environment gets (the parent's version).

    Its environments would fail to install (``pytest==9.x`` on Python 3.9).
    Decided from the request's major and minor version, taken at its highest
    patch release, so ``3.8`` passes ``>=3.8.1``; a combination whose matrix
    names pytest itself chose its own.
    """
    if not requires_python:
        return
    try:
        supported = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return
    for combination in combinations:
        if combination.python is None or "pytest" in combination.env.names():
            continue
        match = _PYTHON_REQUEST.fullmatch(combination.python)
        release = match["version"].split(".") if match else []
        if len(release) < 2:
            continue  # a path, or a major version only: cannot tell here
        highest = ".".join(release) if len(release) == 3 else f"{release[0]}.{release[1]}.999"
        if not supported.contains(highest, prereleases=True):
            major = pytest_version.split(".")[0]
            raise MarkerError(
                f"{where}: envmatrix python: {combination.python!r} cannot run pytest {pytest_version} "
                f"(Requires-Python {requires_python}), which every environment gets unless the matrix names pytest: "
                f"add deps=['pytest<{major}'] (or another pytest) to this test"
            )


def parse_axis(text: str, source: str) -> tuple[str, list[str]]:
    """``numpy=1.26.4,2.0.2`` (a command-line or ini axis) → ``("numpy", ["1.26.4", "2.0.2"])``.

    Values are separated by commas; a specifier of several clauses stays one
    value (``numpy=>=2,<2.2,1.26.4`` is ``>=2,<2.2`` and ``1.26.4``): a piece
    that starts with an operator continues a previous piece that did, or a
    ``minors:`` selector (``minors:>=1.24,<2.3``).
    """
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise MarkerError(f"{source}: {text!r} is not an axis: write name=version,version (e.g. numpy=1.26.4,2.1.3)")
    values: list[str] = []
    for piece in (part.strip() for part in rest.split(",")):
        if not piece:
            raise MarkerError(f"{source}: {text!r} has an empty value")
        if values and piece[0] in "<>=!~" and (values[-1][0] in "<>=!~" or values[-1].startswith(MINORS)):
            values[-1] += "," + piece
        else:
            values.append(piece)
    return name, values


def suite_matrix(command_line: Iterable[str], ini: Iterable[str], forced: bool = False) -> Matrix | None:
    """The matrix every test runs in; None when no axis is given.

    An axis on the command line replaces the ini file's axis of the same
    name (to try one version without editing the file); a name given twice
    in one place is an error. ``forced``: the first command-line axis is
    one markers cannot narrow (see :attr:`Matrix.forced`).
    """
    named: dict[str, list[str]] = {}
    for texts, source in ((command_line, "--envmatrix-axis"), (ini, "ini option envmatrix_axes")):
        given: set[str] = set()
        for text in texts:
            if not text.strip():
                continue
            name, values = parse_axis(text.strip(), source)
            key = PYTHON_AXIS if name == PYTHON_AXIS else _canonical_name(name, source)
            if key in given:
                raise MarkerError(f"{source}: axis {name!r} is given twice")
            given.add(key)
            if not any(_same_axis(key, other) for other in named):
                named[name] = values
    if not named:
        return None
    matrix = build_matrix([((), named)], where="the suite-wide matrix")
    if forced:
        first = next(iter(named))
        matrix.forced = frozenset({PYTHON_AXIS if first == PYTHON_AXIS else canonicalize_name(first)})
    return matrix


def _same_axis(key: str, name: str) -> bool:
    return key == (PYTHON_AXIS if name == PYTHON_AXIS else canonicalize_name(name))


def validate_requirement_lines(lines: Iterable[str], source: str) -> list[str]:
    """Check requirement lines from configuration; the error names ``source``."""
    out = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            Requirement(line)
        except InvalidRequirement as exc:
            raise MarkerError(f"{source}: {line!r} is not a valid requirement ({exc})") from None
        out.append(line)
    return out


@dataclass(frozen=True)
class UpgradeTarget:
    """A package the upgrade check moves: to the newest release the resolver allows, or to ``version``."""

    name: str  # as written
    canonical: str
    version: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.canonical}=={self.version}" if self.version else self.canonical

    def __str__(self) -> str:
        return f"{self.name}=={self.version}" if self.version else self.name


def parse_upgrade_targets(texts: Iterable[str], source: str = "--envmatrix-upgrade") -> tuple[UpgradeTarget, ...]:
    """``numpy`` or ``numpy==2.2.6``, once per package."""
    targets: dict[str, UpgradeTarget] = {}
    for text in texts:
        name, sep, version = text.strip().partition("==")
        name, version = name.strip(), version.strip()
        try:
            canonical = canonicalize_name(name, validate=True)
            if sep:
                version = str(Version(version))
        except (InvalidName, InvalidVersion):
            raise MarkerError(
                f"{source}: {text!r} is neither a package name nor name==version (e.g. numpy or numpy==2.2.6)"
            ) from None
        if canonical in targets:
            raise MarkerError(f"{source}: {name!r} is given twice")
        targets[canonical] = UpgradeTarget(name, canonical, version if sep else None)
    return tuple(targets.values())
