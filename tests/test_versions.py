"""Version selectors (current, latest, oldest, minors:...): what the index offers for this interpreter, once per run.

The index is a find-links folder of made-up wheels, or a small JSON simple
API (PEP 691) served from this process for the tests that count requests
and take the index away.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.version import Version

from conftest import build_wheel
from pytest_envmatrix.installer import IndexOptions
from pytest_envmatrix.matrix import MarkerError, build_matrix, parse_axis
from pytest_envmatrix.versions import AnswerCache, ReleaseFinder, Resolver, Sources, Target, VersionLookupError

#: installable here: 1.0 ... 2.1, four minor series; 3.0rc1 is a pre-release
LADDER = ("1.0", "1.0.1", "1.1", "1.1.1", "2.0", "2.0.3", "2.1", "3.0rc1")
HERE = f"{sys.version_info[0]}.{sys.version_info[1]}"


def ladder_module(version: str) -> dict[str, str]:
    return {"emx_ladder/__init__.py": f"__version__ = {version!r}\n"}


@pytest.fixture(scope="module")
def ladder(tmp_path_factory) -> Path:
    """emx-ladder at many versions, and two newer ones that do not install on this interpreter."""
    dest = tmp_path_factory.mktemp("ladder")
    for version in LADDER:
        build_wheel(dest, "emx-ladder", version, ladder_module(version))
    # newer, but not for this interpreter: a Requires-Python that excludes it, a tag it does not support
    build_wheel(dest, "emx-ladder", "4.0", ladder_module("4.0"), requires_python=f"<{HERE}")
    build_wheel(dest, "emx-ladder", "5.0", ladder_module("5.0"), tag="cp27-cp27m-win32")
    build_wheel(dest, "emx-other", "9.0", {"emx_other/__init__.py": ""})
    return dest


def finder(folder: Path, cache: Path) -> ReleaseFinder:
    return ReleaseFinder(Sources.of(IndexOptions(find_links=(str(folder),), no_index=True), "uv", {}), AnswerCache(cache))


def test_releases_are_those_that_install_on_this_interpreter(ladder, tmp_path):
    releases = finder(ladder, tmp_path).releases("emx-ladder", Target.running())
    assert releases == [Version(v) for v in LADDER if "rc" not in v]


def test_pre_releases_only_when_asked(ladder, tmp_path):
    releases = finder(ladder, tmp_path).releases("emx-ladder", Target.running(), pre=True)
    assert releases[-1] == Version("3.0rc1")


def test_another_interpreter_gets_the_release_its_requires_python_admits(ladder, tmp_path):
    older = Target("cpython", (3, 1, 0))
    assert Version("4.0") in finder(ladder, tmp_path).releases("emx-ladder", older)


def resolve(ladder, tmp_path, text, pre=False, project=None):
    return Resolver(finder(ladder, tmp_path), pre=pre, project_requirements=project).resolve("emx-ladder", text)


def test_latest_minors_and_oldest(ladder, tmp_path):
    assert resolve(ladder, tmp_path, "latest") == ["2.1"]
    assert resolve(ladder, tmp_path, "latest", pre=True) == ["3.0rc1"]
    assert resolve(ladder, tmp_path, "minors:>=1.0.1,<3") == ["1.0.1", "1.1.1", "2.0.3", "2.1"]
    assert resolve(ladder, tmp_path, "oldest", project=["emx-ladder>=1.1", "other"]) == ["1.1"]
    # a requirement whose environment marker excludes this interpreter does not count
    assert resolve(ladder, tmp_path, "oldest", project=["emx-ladder>=2; python_version<'3'", "emx-ladder>1.0"]) == ["1.0.1"]


def test_oldest_without_the_projects_requirement_says_so(ladder, tmp_path):
    with pytest.raises(VersionLookupError, match=r"emx-ladder 'oldest': .*the project under test has none in its \[project\].dependencies"):
        resolve(ladder, tmp_path, "oldest", project=["attrs"])
    with pytest.raises(VersionLookupError, match=r"there is no project under test"):
        resolve(ladder, tmp_path, "oldest", project=None)


def test_current_is_the_version_installed_here(ladder, tmp_path):
    assert Resolver(finder(ladder, tmp_path)).resolve("pytest", "current") == [pytest.__version__]
    with pytest.raises(VersionLookupError, match=r"emx-ladder 'current': .* emx-ladder is not installed there"):
        resolve(ladder, tmp_path, "current")


def test_a_range_with_no_release_is_an_error_naming_where_it_looked(ladder, tmp_path):
    with pytest.raises(VersionLookupError, match=rf"emx-ladder 'minors:>=7': no release in that range installs for Python .*{ladder}"):
        resolve(ladder, tmp_path, "minors:>=7")


def test_selector_syntax_is_checked_in_the_marker():
    with pytest.raises(MarkerError, match=r"envmatrix axis 'numpy': 'minors:' needs a range of versions"):
        build_matrix([((), {"numpy": ["minors:"]})], where="t")
    with pytest.raises(MarkerError, match=r"'minors:>>1': '>>1' is not a version specifier"):
        build_matrix([((), {"numpy": ["minors:>>1"]})], where="t")
    with pytest.raises(MarkerError, match=r"'newest' is neither a version .* nor a selector"):
        build_matrix([((), {"numpy": ["newest"]})], where="t")
    with pytest.raises(MarkerError, match=r"'latest' repeats 'latest'"):
        build_matrix([((), {"numpy": ["latest", "latest"]})], where="t")


def test_resolved_selectors_make_concrete_combinations_once_each():
    matrix = build_matrix([((), {"numpy": ["2.2.6", "latest", "minors:>=2.1"]})], where="t")
    assert matrix.selectors() == [("numpy", "latest", None), ("numpy", "minors:>=2.1", None)]
    resolved = {("numpy", "latest", None): ["2.2.6"], ("numpy", "minors:>=2.1", None): ["2.1.3", "2.2.6"]}
    combinations = matrix.combinations((), resolved)
    assert [c.id for c in combinations] == ["numpy-2.2.6", "numpy-2.1.3"]
    assert combinations[1].env.requirements == ("numpy==2.1.3",)
    assert combinations[1].pins[0].selector == "minors:>=2.1"


def test_a_minors_range_stays_one_value_on_the_command_line():
    assert parse_axis("numpy=minors:>=1.24,<2.3,latest", "--envmatrix-axis") == ("numpy", ["minors:>=1.24,<2.3", "latest"])


# ----------------------------------------------------------------------------- in a run

MARKED = """
    import pytest

    @pytest.mark.envmatrix(emx_ladder=["minors:>=1.1", "latest"])
    def test_imports_the_resolved_version(envmatrix_combination):
        import emx_ladder
        assert emx_ladder.__version__ == envmatrix_combination["emx_ladder"]
    """


def test_marker_selectors_resolve_to_concrete_item_ids(matrix, ladder):
    matrix.wheel_dirs.append(ladder)
    matrix.pytester.makepyfile(test_ladder=MARKED)
    result = matrix.run("-v")
    result.stdout.fnmatch_lines_random(
        [
            "*test_imports_the_resolved_version[[]emx_ladder-1.1.1[]] PASSED*",
            "*test_imports_the_resolved_version[[]emx_ladder-2.0.3[]] PASSED*",
            "*test_imports_the_resolved_version[[]emx_ladder-2.1[]] PASSED*",
        ]
    )
    result.assert_outcomes(passed=3)  # latest is 2.1, the last minor's newest: one combination


def test_list_shows_what_each_selector_resolved_to(matrix, ladder):
    matrix.wheel_dirs.append(ladder)
    matrix.pytester.makepyfile(test_ladder=MARKED)
    result = matrix.run("--envmatrix-list")
    result.stdout.fnmatch_lines(
        ["envmatrix: version selectors", "  emx-ladder minors:>=1.1 -> 1.1.1, 2.0.3, 2.1", "  emx-ladder latest -> 2.1"]
    )


def test_a_suite_wide_axis_takes_selectors(matrix, ladder):
    matrix.wheel_dirs.append(ladder)
    matrix.pytester.makepyfile(
        test_plain="""
        import emx_ladder

        def test_version(envmatrix_combination):
            assert emx_ladder.__version__ == envmatrix_combination["emx_ladder"]
        """
    )
    result = matrix.run("-v", "--envmatrix-axis=emx_ladder=minors:>=2,<3,latest")
    result.stdout.fnmatch_lines_random(["*test_version[[]emx_ladder-2.0.3[]] PASSED*", "*test_version[[]emx_ladder-2.1[]] PASSED*"])
    result.assert_outcomes(passed=2)


# ----------------------------------------------------------------------------- the index, its cache, and no index


class SimpleIndex:
    """A PEP 691 JSON simple API for emx-ladder, counting the requests it answers."""

    def __init__(self) -> None:
        files = [{"filename": f"emx_ladder-{v}-py3-none-any.whl", "url": "x", "hashes": {}} for v in ("1.0", "1.5", "2.0")]
        files.append({"filename": "emx_ladder-2.5-py3-none-any.whl", "url": "x", "hashes": {}, "yanked": "broken"})
        body = json.dumps({"meta": {"api-version": "1.0"}, "name": "emx-ladder", "files": files}).encode()
        self.requests: list[str] = []
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                index.requests.append(self.path)
                if self.path.rstrip("/") != "/simple/emx-ladder":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def index():
    served = SimpleIndex()
    yield served
    served.close()


def closed_port_url() -> str:
    """An index URL nothing listens at: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/simple"


@pytest.fixture
def listing(pytester, tmp_path, hermetic_installer):
    pytester.makepyfile(
        test_x="""
        import pytest

        @pytest.mark.envmatrix(emx_ladder=["latest"])
        def test_x():
            pass
        """
    )

    def run(url, *args, cache=tmp_path / "cache"):
        return pytester.runpytest(f"--envmatrix-cache-dir={cache}", f"--envmatrix-index-url={url}", *args)

    return run


def test_the_index_is_asked_once_then_its_answer_is_reused_until_refresh(index, listing):
    result = listing(index.url, "--envmatrix-list")
    result.stdout.fnmatch_lines(["  emx-ladder latest -> 2.0"])  # 2.5 is yanked
    assert index.requests == ["/simple/emx-ladder/"]
    listing(index.url, "--envmatrix-list").stdout.fnmatch_lines(["  emx-ladder latest -> 2.0"])
    assert len(index.requests) == 1  # a warm run asks nothing
    listing(index.url, "--envmatrix-list", "--envmatrix-refresh").stdout.fnmatch_lines(["  emx-ladder latest -> 2.0"])
    assert len(index.requests) == 2


def test_a_time_to_live_of_zero_asks_every_run(index, listing, pytester):
    pytester.makeini("[pytest]\nenvmatrix_versions_ttl = 0\n")
    listing(index.url, "--envmatrix-list")
    listing(index.url, "--envmatrix-list")
    assert len(index.requests) == 2


def test_offline_with_a_cached_answer_uses_it_and_says_so(index, listing, tmp_path):
    url = index.url
    listing(url, "--envmatrix-list")
    index.close()  # the same URL now refuses connections
    result = listing(url, "--envmatrix-list", "--envmatrix-refresh")
    result.stdout.fnmatch_lines(
        ["  emx-ladder latest -> 2.0", f"envmatrix: could not reach {url} (*refused*): using the releases of emx-ladder it listed 0.0 hours ago"]
    )


def test_offline_without_a_cached_answer_errors_the_affected_items(listing):
    url = closed_port_url()
    result = listing(url, "--envmatrix", "-v")
    result.stdout.fnmatch_lines(
        [
            "*test_x.py::test_x[[]emx_ladder-latest[]] ERROR*",
            f"*envmatrix: could not resolve emx-ladder 'latest': could not list the releases of emx-ladder at {url}: "
            "*refused*, and no earlier answer is cached*",
        ]
    )
    result.assert_outcomes(errors=1)


def test_an_answer_of_the_wrong_shape_in_the_cache_is_ignored(index, listing, tmp_path):
    listing(index.url, "--envmatrix-list")
    for kept in (tmp_path / "cache" / "versions").glob("*.json"):
        kept.write_text(json.dumps({"format": 1, "url": index.url + "/emx-ladder/", "fetched": 1e18, "files": [[1, 2, 3]]}))
    listing(index.url, "--envmatrix-list").stdout.fnmatch_lines(["  emx-ladder latest -> 2.0"])
    assert len(index.requests) == 2


def test_offline_without_a_cached_answer_errors_each_suite_wide_combination(listing):
    url = closed_port_url()
    result = listing(url, "--envmatrix", "-v", "--envmatrix-axis=emx_ladder=latest,1.0")
    result.stdout.fnmatch_lines_random(["*envmatrix[[]emx_ladder-latest[]] ERROR*", "*envmatrix[[]emx_ladder-1.0[]] ERROR*"])
    result.stdout.fnmatch_lines(["*envmatrix: could not resolve emx-ladder 'latest': could not list the releases of emx-ladder at *"])
    result.assert_outcomes(errors=2)
