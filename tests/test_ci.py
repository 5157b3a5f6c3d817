"""The matrix in CI: shards that cover every item once, the matrix as JSON, a cache key, a cache restored elsewhere."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

MATRIX = """
import pytest

@pytest.mark.envmatrix(emx_demo=["1.0", "2.0", "3.0"])
def test_version(envmatrix_combination):
    import emx_demo
    assert emx_demo.__version__ == envmatrix_combination["emx_demo"]

@pytest.mark.envmatrix(emx_demo=["1.0"])
@pytest.mark.parametrize("n", range(4))
def test_many_in_one(n):
    import emx_demo
    assert emx_demo.answer() == 1

@pytest.mark.envmatrix(emx_demo=["2.0", "3.0"], deps=["emx-extra"])
def test_with_extra():
    import emx_extra

def test_plain_one():
    pass

def test_plain_two():
    pass
"""

ALL_ITEMS = {
    "test_shardable.py::test_version[emx_demo-1.0]",
    "test_shardable.py::test_version[emx_demo-2.0]",
    "test_shardable.py::test_version[emx_demo-3.0]",
    *(f"test_shardable.py::test_many_in_one[emx_demo-1.0-{n}]" for n in range(4)),
    "test_shardable.py::test_with_extra[emx_demo-2.0]",
    "test_shardable.py::test_with_extra[emx_demo-3.0]",
    "test_shardable.py::test_plain_one",
    "test_shardable.py::test_plain_two",
}
UNMARKED = {"test_shardable.py::test_plain_one", "test_shardable.py::test_plain_two"}


def passed(result: pytest.RunResult) -> list[str]:
    return re.findall(r"^(\S+::\S+) PASSED", result.stdout.str(), re.MULTILINE)


def environment_of(nodeid: str) -> str:
    """The environment a node id of MATRIX runs in: its version, and whether emx-extra is there too."""
    version = re.search(r"\[emx_demo-(\d\.0)", nodeid).group(1)
    return f"{version}+extra" if "test_with_extra" in nodeid else version


def listing(matrix, *args: str, env: dict | None = None) -> dict:
    result = matrix.run("--envmatrix-list", "--envmatrix-json", *args, subprocess=True)
    assert result.ret == 0, result.stderr.str()
    return json.loads(result.stdout.str())


def test_every_item_runs_in_exactly_one_shard_for_every_number_of_shards(matrix):
    matrix.pytester.makepyfile(test_shardable=MATRIX)
    for total in range(1, 5):
        seen: list[str] = []
        environments_per_shard = []
        for index in range(1, total + 1):
            result = matrix.run("-v", f"--envmatrix-shard={index}/{total}", subprocess=True)
            assert result.ret == 0, result.stdout.str()
            ran = passed(result)
            seen.extend(ran)
            environments_per_shard.append({environment_of(nodeid) for nodeid in ran if "[" in nodeid})
            assert ran, f"shard {index}/{total} ran nothing"
            # the unmarked tests run in shard 1, and only there
            assert (UNMARKED <= set(ran)) == (index == 1)
            assert not (UNMARKED & set(ran)) or index == 1
            deselected = len(ALL_ITEMS) - len(ran)
            if deselected:
                result.stdout.fnmatch_lines([f"*{deselected} deselected*"])
        assert sorted(seen) == sorted(ALL_ITEMS), f"{total} shards"
        # never one environment's items in two shards (emx_demo-2.0 with and without emx-extra are two environments)
        labels = [label for shard in environments_per_shard for label in shard]
        assert sorted(labels) == sorted(set(labels)) and len(labels) == 5


def test_the_split_is_the_same_in_every_process(matrix, monkeypatch):
    matrix.pytester.makepyfile(test_shardable=MATRIX)
    assignments = []
    for seed in ("0", "1", "12345"):
        monkeypatch.setenv("PYTHONHASHSEED", seed)
        found = listing(matrix, "--envmatrix-shard=1/3")
        assignments.append({env["label"]: env["shard"] for env in found["environments"]})
    assert assignments[0] == assignments[1] == assignments[2]
    assert len(assignments[0]) == 5 and set(assignments[0].values()) == {1, 2, 3}


def test_list_json_describes_the_matrix_and_agrees_with_the_cache(matrix):
    matrix.pytester.makepyfile(test_shardable=MATRIX)
    matrix.run().assert_outcomes(passed=11)
    found = listing(matrix, "--envmatrix-shard=2/2")
    by_label = {env["label"]: env for env in found["environments"]}
    assert set(by_label) == {"emx-demo==1.0", "emx-demo==2.0", "emx-demo==3.0", "emx-demo==2.0 emx-extra", "emx-demo==3.0 emx-extra"}
    one = by_label["emx-demo==1.0"]
    assert one["pins"] == {"emx_demo": "1.0"} and one["items"] == 5 and one["python"] is None
    assert f"pytest=={pytest.__version__}" in one["requirements"]
    assert by_label["emx-demo==2.0 emx-extra"]["items"] == 1
    for env in found["environments"]:
        assert env["cached"] is True
        mark = json.loads((Path(env["path"]) / "envmatrix.json").read_text())
        assert mark["key"] == env["key"] and mark["label"] == env["label"]
    assert found["unmarked_items"] == 2 and found["unmarked_shard"] == 1
    shards = {entry["shard"]: entry for entry in found["shards"]}
    assert set(shards) == {"1/2", "2/2"}
    assert sorted(label for entry in found["shards"] for label in entry["environments"]) == sorted(by_label)
    assert sum(entry["items"] for entry in found["shards"]) == 11
    for number, entry in enumerate(found["shards"], start=1):
        assert all(by_label[label]["shard"] == number for label in entry["environments"])


def test_cache_key_is_stable_per_shard_and_changes_with_a_version(matrix):
    matrix.pytester.makepyfile(test_shardable=MATRIX)

    def key(*args):
        result = matrix.run("--envmatrix-cache-key", *args, subprocess=True)
        assert result.ret == 0, result.stderr.str()
        assert "test session starts" not in result.stdout.str()  # stdout holds the key alone
        assert len(result.stdout.lines) == 1 and re.fullmatch(r"[0-9a-f]{64}", result.stdout.lines[0]), result.stdout.str()
        return result.stdout.str().strip()

    whole, again = key(), key()
    assert whole == again
    assert whole == listing(matrix)["cache_key"]
    first, second = key("--envmatrix-shard=1/2"), key("--envmatrix-shard=2/2")
    assert len({whole, first, second}) == 3
    assert [first, second] == [entry["cache_key"] for entry in listing(matrix, "--envmatrix-shard=1/2")["shards"]]
    matrix.pytester.makepyfile(test_shardable=MATRIX.replace('"1.0", "2.0", "3.0"', '"1.0", "2.0"'))
    assert key() != whole  # one environment fewer
    matrix.pytester.makepyfile(test_shardable=MATRIX)
    assert key() == whole
    matrix.pytester.makeini("[pytest]\nenvmatrix_deps = emx-needs-old\n")
    assert key() != whole  # every environment changed


def test_suite_wide_shards_start_only_their_own_environments(fresh_matrix):
    fresh_matrix.pytester.makepyfile(
        test_stats="""
        import emx_demo

        def test_answer(envmatrix_combination):
            assert emx_demo.answer() == int(envmatrix_combination["emx_demo"][0])
        """
    )
    axis = "--envmatrix-axis=emx_demo=1.0,2.0,3.0"
    plan = listing(fresh_matrix, axis, "--envmatrix-shard=1/2")
    assert plan["suite_wide"] is True
    shard_of = {env["id"]: env["shard"] for env in plan["environments"]}
    assert sorted(shard_of.values()) == [1, 1, 2] or sorted(shard_of.values()) == [1, 2, 2]
    ran = []
    for index in (1, 2):
        result = fresh_matrix.run("-v", axis, f"--envmatrix-shard={index}/2")
        assert result.ret == 0
        mine = sorted(cid for cid, shard in shard_of.items() if shard == index)
        assert sorted(re.findall(r"test_answer\[(emx_demo-\d\.0)\] PASSED", result.stdout.str())) == mine
        # the other shard's environments were never built: their children never collected
        built = sorted(mark["label"] for mark in fresh_matrix.envs().values())
        assert len(built) == len(ran) + len(mine)
        ran += mine
    assert sorted(ran) == ["emx_demo-1.0", "emx_demo-2.0", "emx_demo-3.0"]


def test_a_shard_without_environments_passes_and_says_so(matrix):
    matrix.pytester.makepyfile(
        test_one="""
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_a():
            pass
        """
    )
    result = matrix.run("--envmatrix-shard=2/3")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["envmatrix: shard 2/3: 0 environment(s), 1 in other shards (1 item(s) deselected)"])


def test_durations_are_stored_and_balance_the_shards(matrix, tmp_path):
    matrix.pytester.makepyfile(test_shardable=MATRIX)
    durations = tmp_path / "durations.json"
    result = matrix.run("--envmatrix-store-durations", f"--envmatrix-durations={durations}")
    result.assert_outcomes(passed=11)
    stored = json.loads(durations.read_text())
    assert set(stored["items"]) == ALL_ITEMS
    assert stored["items"]["test_shardable.py::test_version[emx_demo-2.0]"]["combination"] == "emx_demo-2.0"
    assert all(entry["seconds"] >= 0 for entry in stored["items"].values())

    by_count = listing(matrix, "--envmatrix-shard=1/2")
    counted = {env["label"]: env["shard"] for env in by_count["environments"]}
    # emx-demo==1.0 has 5 items; by count it gets a shard of its own (shard 2: shard 1 carries the unmarked tests)
    assert [label for label, shard in counted.items() if shard == 2] == ["emx-demo==1.0"]
    # recorded times say otherwise: test_version is slow, the rest is instant
    for nodeid, entry in stored["items"].items():
        entry["seconds"] = 100.0 if "test_version[" in nodeid else 0.01
    durations.write_text(json.dumps(stored))
    timed = listing(matrix, "--envmatrix-shard=1/2", f"--envmatrix-durations={durations}")
    by_time = {env["label"]: env["shard"] for env in timed["environments"]}
    heavy = ["emx-demo==1.0", "emx-demo==2.0", "emx-demo==3.0"]
    assert sorted(by_time[label] for label in heavy) == [1, 1, 2] or sorted(by_time[label] for label in heavy) == [1, 2, 2]
    assert by_time != counted
    # and a sharded run follows it
    result = matrix.run("-v", "--envmatrix-shard=2/2", f"--envmatrix-durations={durations}")
    ran = {re.search(r"\[(emx_demo-\d\.0)", nodeid).group(1) for nodeid in passed(result) if "test_version[" in nodeid}
    assert ran == {label.replace("emx-demo==", "emx_demo-") for label in heavy if by_time[label] == 2}
    result.stdout.fnmatch_lines([f"envmatrix: shard 2/2 of the environments, balanced by durations in {durations}; unmarked tests run in shard 1"])


def test_storing_durations_from_one_shard_keeps_the_others(matrix, tmp_path):
    matrix.pytester.makepyfile(test_shardable=MATRIX)
    durations = tmp_path / "durations.json"
    for index in (1, 2):
        matrix.run("--envmatrix-shard", f"{index}/2", "--envmatrix-store-durations", f"--envmatrix-durations={durations}")
    assert set(json.loads(durations.read_text())["items"]) == ALL_ITEMS


BAD_USAGE = [
    (["--envmatrix-shard=3/2"], "ERROR: --envmatrix-shard: '3/2': K must be between 1 and N (2)"),
    (["--envmatrix-shard=two"], "ERROR: --envmatrix-shard: 'two' is not K/N (this job's shard K of N shards, e.g. 2/4)"),
    (["--envmatrix-store-durations"], "ERROR: --envmatrix-store-durations: name the file with --envmatrix-durations=FILE"),
    (["--envmatrix-durations=missing.json"], "ERROR: --envmatrix-durations: */missing.json does not exist; write it with --envmatrix-store-durations*"),
    (["--envmatrix-json"], "ERROR: --envmatrix-json: only with --envmatrix-list (pytest --envmatrix-list --envmatrix-json)"),
]


@pytest.mark.parametrize("args, message", BAD_USAGE, ids=[args[0] for args, _ in BAD_USAGE])
def test_bad_ci_options_are_usage_errors(matrix, args, message):
    matrix.pytester.makepyfile(test_shardable=MATRIX)
    result = matrix.run(*args, subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_durations_file_of_the_wrong_shape_is_a_usage_error(matrix, tmp_path):
    matrix.pytester.makepyfile(test_shardable=MATRIX)
    bad = tmp_path / "durations.json"
    bad.write_text('{"format": 1, "items": {"t.py::a": 3}}')
    result = matrix.run("--envmatrix-shard=1/2", f"--envmatrix-durations={bad}", subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: durations file {bad}: the entry for 't.py::a' is not *"])


# ----------------------------------------------------------------------------- a cache restored at another path

WHERE_AM_I = """
import os
import subprocess
import sys

import pytest

@pytest.mark.envmatrix(emx_demo=["2.0"])
def test_runs_in_the_restored_cache():
    import emx_demo
    assert emx_demo.__version__ == "2.0"
    expected = os.path.realpath(os.environ["EXPECTED_CACHE"])
    assert os.path.realpath(sys.prefix).startswith(expected + os.sep), sys.prefix
    assert os.path.realpath(emx_demo.__file__).startswith(expected + os.sep), emx_demo.__file__
    # a console script of the environment runs through its shebang line
    scripts = os.path.join(sys.prefix, "bin")
    done = subprocess.run([os.path.join(scripts, "pytest"), "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
"""


def _text_naming(root: Path, old: str) -> list[str]:
    """Files of the environments' scripts and configuration (and link targets) that still name ``old``."""
    found = []
    for env in (root / "envs").iterdir():
        for path in [env / "pyvenv.cfg", env / "envmatrix.json", *(env / "bin").iterdir()]:
            if path.is_symlink():
                if old in os.readlink(path):
                    found.append(str(path))
            elif path.is_file() and old.encode() in path.read_bytes():
                found.append(str(path))
    return found


@pytest.mark.parametrize("installer", ["uv", "pip"])
@pytest.mark.parametrize("how", ["moved", "copied"])
def test_a_cache_restored_at_another_path_is_used_there(fresh_matrix, tmp_path, monkeypatch, installer, how):
    fresh_matrix.pytester.makepyfile(test_where=WHERE_AM_I)
    first = tmp_path / "first" / "cache"
    monkeypatch.setenv("EXPECTED_CACHE", str(first))
    fresh_matrix.run(f"--envmatrix-installer={installer}", cache=first).assert_outcomes(passed=1)

    restored = tmp_path / "restored" / "elsewhere"
    shutil.copytree(first, restored, symlinks=True)
    if how == "moved":
        shutil.rmtree(first)
    monkeypatch.setenv("EXPECTED_CACHE", str(restored))
    result = fresh_matrix.run(f"--envmatrix-installer={installer}", cache=restored)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*envmatrix: environments: 0 built*, 1 reused*"])
    assert _text_naming(restored, str(first)) == []
    (mark,) = fresh_matrix.envs(restored).values()
    assert mark["path"].startswith(str(restored))
    # and the next run takes it as it is now
    again = fresh_matrix.run(f"--envmatrix-installer={installer}", cache=restored)
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["*0 built*, 1 reused*"])


def test_an_environment_that_cannot_be_rewritten_is_rebuilt(fresh_matrix, tmp_path, monkeypatch):
    fresh_matrix.pytester.makepyfile(test_where=WHERE_AM_I)
    first = tmp_path / "first"
    monkeypatch.setenv("EXPECTED_CACHE", str(first))
    fresh_matrix.run(cache=first).assert_outcomes(passed=1)
    (env,) = (first / "envs").iterdir()
    # a compiled launcher that names the environment's path: no safe rewrite
    (env / "bin" / "launcher").write_bytes(b"\x7fELF\0\0" + str(env).encode() + b"/bin/python\0")
    restored = tmp_path / "restored"
    shutil.move(str(first), restored)
    monkeypatch.setenv("EXPECTED_CACHE", str(restored))
    result = fresh_matrix.run(cache=restored)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*envmatrix: environments: 1 built*, 0 reused*"])
    assert not (restored / "envs" / env.name / "bin" / "launcher").exists()
    assert _text_naming(restored, str(first)) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving files to another user needs root")
def test_an_environment_another_user_owns_is_rebuilt(fresh_matrix, tmp_path, monkeypatch):
    fresh_matrix.pytester.makepyfile(test_where=WHERE_AM_I)
    cache = tmp_path / "cache"
    monkeypatch.setenv("EXPECTED_CACHE", str(cache))
    fresh_matrix.run(cache=cache).assert_outcomes(passed=1)
    (env,) = (cache / "envs").iterdir()
    os.chown(env, 65534, 65534)  # nobody: only the directory, so this process can still remove it
    result = fresh_matrix.run(cache=cache)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 built*, 0 reused*"])
    assert env.stat().st_uid == os.geteuid()
