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
}


@pytest.mark.parametrize("shape", list(BAD_MARKS))
def test_a_completion_mark_of_the_wrong_shape_means_rebuild(fresh_matrix, shape):
    fresh_matrix.pytester.makepyfile(ONE_ENV)
    fresh_matrix.run().assert_outcomes(passed=2)
    ((name, mark),) = fresh_matrix.envs().items()
    env_dir = fresh_matrix.cache / "envs" / name
    (env_dir / "envmatrix.json").write_text(json.dumps(BAD_MARKS[shape](mark, env_dir)))

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
    "groups null": lambda plan: {**plan, "groups": None},
    "groups a dict": lambda plan: {**plan, "groups": {"a": 1}},
    "a group a list": lambda plan: {**plan, "groups": [[]]},
    "a key a number": lambda plan: {**plan, "groups": [{**g, "key": 5} for g in plan["groups"]]},
    "a key a list": lambda plan: {**plan, "groups": [{**g, "key": [g["key"]]} for g in plan["groups"]]},
    "a label a number": lambda plan: {**plan, "groups": [{**g, "label": 5} for g in plan["groups"]]},
    "items null": lambda plan: {**plan, "groups": [{**g, "items": None} for g in plan["groups"]]},
    "an item of numbers": lambda plan: {**plan, "groups": [{**g, "items": [[1, 2, 3, 4]]} for g in plan["groups"]]},
    "an item too short": lambda plan: {**plan, "groups": [{**g, "items": [["a"]]} for g in plan["groups"]]},
    "values a list": lambda plan: {
        **plan,
        "groups": [{**g, "items": [[*i[:3], [["emx_demo", "1.0"]]] for i in g["items"]]} for g in plan["groups"]],
    },
    "values a number": lambda plan: {**plan, "groups": [{**g, "items": [[*i[:3], 1] for i in g["items"]]} for g in plan["groups"]]},
    "a value a list": lambda plan: {
        **plan,
        "groups": [{**g, "items": [[*i[:3], {"emx_demo": ["1.0"]}] for i in g["items"]]} for g in plan["groups"]],
    },
}


@pytest.mark.parametrize("shape", list(BAD_PLANS))
def test_a_plan_of_the_wrong_shape_is_ignored(fresh_matrix, shape):
    fresh_matrix.pytester.makepyfile(ONE_ENV)
    fresh_matrix.run().assert_outcomes(passed=2)
    (plan_file,) = (fresh_matrix.cache / "plans").glob("*.json")
    plan = json.loads(plan_file.read_text())
    plan_file.write_text(json.dumps(BAD_PLANS[shape](plan)))

    result = fresh_matrix.run()
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*0 built*, 1 reused*"])
    assert "started during collection" not in result.stdout.str()
    assert json.loads(plan_file.read_text()) == plan  # written again for the next run
