"""Every file the environment cache holds is untrusted input.

A completion mark or a plan of the wrong shape means "not built" (rebuild
it) or "no plan" (ignore it); a cache that cannot be used errors the items of
the environments it is needed for, with the OS error, and the rest of the run
goes on. Never an internal error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ONE_ENV = """
import pytest

@pytest.mark.envmatrix(emx_demo=["1.0"])
def test_demo():
    import emx_demo
    assert emx_demo.answer() == 1

def test_unmarked():
    pass
"""


def build_count(cache: Path) -> int:
    log = cache / "builds.log"
    return len(log.read_text().splitlines()) if log.is_file() else 0


def outside_python(env_dir: Path) -> str:
    """A path relative to ``env_dir`` that leads, through '..', to a real interpreter outside it."""
    return os.path.relpath(os.path.realpath(sys.executable), env_dir)


TOO_DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON that Python's parser gives up on (RecursionError)


def write_json(path: Path, value) -> None:
    path.write_text(value if value is TOO_DEEP else json.dumps(value))


BAD_MARKS = {
    "a list": lambda mark, env_dir: [],
    "null": lambda mark, env_dir: None,
    "a number": lambda mark, env_dir: 42,
    "a string": lambda mark, env_dir: "envmatrix",
    "key a number": lambda mark, env_dir: {**mark, "key": 7},
    "key a list": lambda mark, env_dir: {**mark, "key": [mark["key"]]},
    "env_python a number": lambda mark, env_dir: {**mark, "env_python": 3},
    "env_python a list": lambda mark, env_dir: {**mark, "env_python": [mark["env_python"]]},
    "env_python a dict": lambda mark, env_dir: {**mark, "env_python": {"path": mark["env_python"]}},
    "env_python null": lambda mark, env_dir: {**mark, "env_python": None},
    "env_python with a NUL": lambda mark, env_dir: {**mark, "env_python": mark["env_python"] + "\x00"},
    "env_python up and out": lambda mark, env_dir: {**mark, "env_python": outside_python(env_dir)},
    "env_python absolute": lambda mark, env_dir: {**mark, "env_python": os.path.realpath(sys.executable)},
    "nested too deep to parse": lambda mark, env_dir: TOO_DEEP,
    # the path it was built at (read to rewrite a moved environment): never followed when it is not one
    "path missing (an earlier version's mark)": lambda mark, env_dir: {k: v for k, v in mark.items() if k != "path"},
    "path a number": lambda mark, env_dir: {**mark, "path": 3},
    "path relative": lambda mark, env_dir: {**mark, "path": "envs/elsewhere"},
    "path with a NUL": lambda mark, env_dir: {**mark, "path": str(env_dir) + "\x00x"},
}


@pytest.mark.parametrize("shape", list(BAD_MARKS))
def test_a_completion_mark_of_the_wrong_shape_means_rebuild(fresh_matrix, shape):
    fresh_matrix.pytester.makepyfile(ONE_ENV)
    fresh_matrix.run().assert_outcomes(passed=2)
    ((name, mark),) = fresh_matrix.envs().items()
    env_dir = fresh_matrix.cache / "envs" / name
    write_json(env_dir / "envmatrix.json", BAD_MARKS[shape](mark, env_dir))

    result = fresh_matrix.run()
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*1 built*, 0 reused*"])
    assert build_count(fresh_matrix.cache) == 2
    assert fresh_matrix.envs()[name]["env_python"] == mark["env_python"]


def test_a_completion_mark_of_the_wrong_shape_is_not_listed_as_cached(fresh_matrix):
    fresh_matrix.pytester.makepyfile(ONE_ENV)
    fresh_matrix.run().assert_outcomes(passed=2)
    ((name, _mark),) = fresh_matrix.envs().items()
    (fresh_matrix.cache / "envs" / name / "envmatrix.json").write_text("[]")
    result = fresh_matrix.run("--envmatrix-list")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*not built*emx-demo==1.0*"])


BAD_PLANS = {
    "a list": lambda plan: [],
    "null": lambda plan: None,
    "a number": lambda plan: 5,
    "nested too deep to parse": lambda plan: TOO_DEEP,
    "groups null": lambda plan: {**plan, "groups": None},
    "groups a dict": lambda plan: {**plan, "groups": {"a": 1}},
    "a group a list": lambda plan: {**plan, "groups": [[]]},
    "a key a number": lambda plan: {**plan, "groups": [{**g, "key": 5} for g in plan["groups"]]},
    "a key a list": lambda plan: {**plan, "groups": [{**g, "key": [g["key"]]} for g in plan["groups"]]},
    "a label a number": lambda plan: {**plan, "groups": [{**g, "label": 5} for g in plan["groups"]]},
    "items null": lambda plan: {**plan, "groups": [{**g, "items": None} for g in plan["groups"]]},
    "an item of numbers": lambda plan: {**plan, "groups": [{**g, "items": [[1, 2, 3, 4, 5]]} for g in plan["groups"]]},
    "an item too short": lambda plan: {**plan, "groups": [{**g, "items": [["a"]]} for g in plan["groups"]]},
    "values a list": lambda plan: {
        **plan,
        "groups": [{**g, "items": [[*i[:3], [["emx_demo", "1.0"]], *i[4:]] for i in g["items"]]} for g in plan["groups"]],
    },
    "values a number": lambda plan: {**plan, "groups": [{**g, "items": [[*i[:3], 1, *i[4:]] for i in g["items"]]} for g in plan["groups"]]},
    "collect_as a number": lambda plan: {**plan, "groups": [{**g, "items": [[*i[:4], 7] for i in g["items"]]} for g in plan["groups"]]},
    "a value a list": lambda plan: {
        **plan,
        "groups": [{**g, "items": [[*i[:3], {"emx_demo": ["1.0"]}, *i[4:]] for i in g["items"]]} for g in plan["groups"]],
    },
}


@pytest.mark.parametrize("shape", list(BAD_PLANS))
def test_a_plan_of_the_wrong_shape_is_ignored(fresh_matrix, shape):
    fresh_matrix.pytester.makepyfile(ONE_ENV)
    fresh_matrix.run().assert_outcomes(passed=2)
    (plan_file,) = (fresh_matrix.cache / "plans").glob("*.json")
    plan = json.loads(plan_file.read_text())
    write_json(plan_file, BAD_PLANS[shape](plan))

    result = fresh_matrix.run()
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*0 built*, 1 reused*"])
    assert "started during collection" not in result.stdout.str()
    assert json.loads(plan_file.read_text()) == plan  # written again for the next run


ALL_MARKED = """
import pytest

@pytest.mark.envmatrix(emx_demo=["1.0"])
def test_demo():
    import emx_demo
    assert emx_demo.answer() == 1

@pytest.mark.envmatrix(emx_demo=["1.0"])
def test_again():
    import emx_demo
    assert emx_demo.answer() == 1
"""


def _record(plan: dict, change) -> dict:
    """``plan`` with ``change(record)`` in place of its one module record."""
    ((path, record),) = plan["modules"].items()
    return {**plan, "modules": {path: change(record)}}


def _first_item(record: dict, change) -> dict:
    return {**record, "items": [change(record["items"][0]), *record["items"][1:]]}


BAD_RECORDS = {
    "modules a list": lambda plan: {**plan, "modules": []},
    "a record a list": lambda plan: _record(plan, lambda r: []),
    "inputs null": lambda plan: _record(plan, lambda r: {**r, "inputs": None}),
    "a digest a number": lambda plan: _record(plan, lambda r: {**r, "inputs": {k: 1 for k in r["inputs"]}}),
    "items empty": lambda plan: _record(plan, lambda r: {**r, "items": []}),
    "an item too short": lambda plan: _record(plan, lambda r: _first_item(r, lambda i: i[:3])),
    "a location of numbers": lambda plan: _record(plan, lambda r: _first_item(r, lambda i: [*i[:3], [1, 2, 3], *i[4:]])),
    "a line a string": lambda plan: _record(plan, lambda r: _first_item(r, lambda i: [*i[:3], [i[3][0], "7", i[3][2]], *i[4:]])),
    "keywords a dict": lambda plan: _record(plan, lambda r: _first_item(r, lambda i: [*i[:4], {"a": 1}, *i[5:]])),
    "a marker a string": lambda plan: _record(plan, lambda r: _first_item(r, lambda i: [*i[:5], ["slow"], *i[6:]])),
    "marks a number": lambda plan: _record(plan, lambda r: {**r, "marks": {k: 5 for k in r["marks"]}}),
    "a mark's keywords a list": lambda plan: _record(plan, lambda r: {**r, "marks": {k: [[[], []]] for k in r["marks"]}}),
    "a mark of numbers": lambda plan: _record(plan, lambda r: {**r, "marks": {k: [[1, 2]] for k in r["marks"]}}),
    "a test without marks": lambda plan: _record(plan, lambda r: {**r, "marks": {}}),
    "a mark no envmatrix value": lambda plan: _record(plan, lambda r: {**r, "marks": {k: [[[5], {}]] for k in r["marks"]}}),
}


@pytest.mark.parametrize("shape", list(BAD_RECORDS))
def test_a_module_record_of_the_wrong_shape_is_ignored(fresh_matrix, shape):
    """The module is then collected as usual: imported, its items real ones."""
    fresh_matrix.pytester.makepyfile(ALL_MARKED)
    fresh_matrix.run().assert_outcomes(passed=2)
    (plan_file,) = (fresh_matrix.cache / "plans").glob("*.json")
    plan = json.loads(plan_file.read_text())
    assert plan["modules"], "the module was recorded"
    write_json(plan_file, BAD_RECORDS[shape](plan))

    result = fresh_matrix.run()
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
    assert json.loads(plan_file.read_text())["modules"] == plan["modules"]  # recorded again for the next run


TWO_ENVS = """
import pytest

@pytest.mark.envmatrix(emx_demo=["1.0"])
def test_built(envmatrix_combination):
    import emx_demo
    assert emx_demo.answer() == 1

@pytest.mark.envmatrix(emx_demo=["2.0"])
def test_new(envmatrix_combination):
    import emx_demo
    assert emx_demo.answer() == 2

def test_unmarked():
    pass
"""


@pytest.fixture
def read_only():
    """``read_only(path)`` makes ``path`` read-only for real, root included: a read-only bind mount of itself."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("making a directory read-only for root needs a bind mount, which needs root")
    mounted = []

    def make(path: Path) -> None:
        for command in (["mount", "--bind", str(path), str(path)], ["mount", "-o", "remount,ro,bind", str(path)]):
            try:
                proc = subprocess.run(command, capture_output=True, text=True, timeout=30)
            except FileNotFoundError:
                pytest.skip("no mount command on this machine")
            if proc.returncode != 0:
                pytest.skip(f"mount not permitted here: {proc.stderr.strip()}")  # the teardown unmounts the bind mount, if made
            if command[1] == "--bind":
                mounted.append(path)

    yield make
    for path in mounted:
        subprocess.run(["umount", str(path)], check=True, timeout=30)


def test_a_read_only_cache_errors_the_environments_it_cannot_build(fresh_matrix, read_only):
    fresh_matrix.pytester.makepyfile(TWO_ENVS)
    fresh_matrix.run("-k", "built or unmarked").assert_outcomes(passed=2)
    read_only(fresh_matrix.cache)
    result = fresh_matrix.run("-v")
    assert result.ret == 1, result.stdout.str()
    result.assert_outcomes(passed=2, errors=1)  # the built environment still runs from a read-only cache
    result.stdout.fnmatch_lines(
        [
            "*envmatrix: could not build emx-demo==2.0: *",
            f"*the environment cache {fresh_matrix.cache} is not usable: *Read-only file system*",
        ]
    )
    assert "internal error" not in result.stdout.str()


@pytest.mark.parametrize("where", ["the build lock", "builds.log", "the in-use lock"])
def test_a_directory_where_the_cache_keeps_a_file_errors_that_environment(fresh_matrix, where):
    fresh_matrix.pytester.makepyfile(TWO_ENVS)
    result = fresh_matrix.run("--envmatrix-list")
    keys = {line.split()[3]: line.split()[0] for line in result.outlines if "not built" in line}
    name = keys["emx-demo==2.0"]
    blocked = {
        "the build lock": fresh_matrix.cache / "locks" / f"{name}.lock",
        "builds.log": fresh_matrix.cache / "builds.log",
        "the in-use lock": fresh_matrix.cache / "locks" / f"{name}.use",
    }[where]
    (blocked / "sub").mkdir(parents=True)
    result = fresh_matrix.run("-v")
    assert "internal error" not in result.stdout.str()
    if where == "the in-use lock":  # only keeps prune away: the run goes on without it
        result.assert_outcomes(passed=3)
        return
    assert result.ret == 1, result.stdout.str()
    result.assert_outcomes(passed=1 if where == "builds.log" else 2, errors=2 if where == "builds.log" else 1)
    result.stdout.fnmatch_lines([f"*the environment cache {fresh_matrix.cache} is not usable: *Is a directory*"])


@pytest.mark.parametrize("lock", ["lock", "use"])
def test_prune_leaves_an_environment_whose_lock_is_a_directory(fresh_matrix, lock):
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        def test_ok():
            pass
        """
    )
    fresh_matrix.run().assert_outcomes(passed=2)
    envs = {m["label"]: fresh_matrix.cache / "envs" / k for k, m in fresh_matrix.envs().items()}
    for env in envs.values():
        os.utime(env / "envmatrix-last-used", (0, 0))
    blocked = fresh_matrix.cache / "locks" / f"{envs['emx-demo==2.0'].name}.{lock}"
    blocked.unlink(missing_ok=True)
    (blocked / "sub").mkdir(parents=True)
    result = fresh_matrix.pytester.runpytest_subprocess(f"--envmatrix-cache-dir={fresh_matrix.cache}", "--envmatrix-prune", timeout=120)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines([f"envmatrix: removed {envs['emx-demo==1.0']} (*MB)", "envmatrix: pruned 1 environment(s) *"])
    assert envs["emx-demo==2.0"].exists()
