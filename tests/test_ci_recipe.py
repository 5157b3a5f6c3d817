"""docs/ci.md's workflows, run: every ``run:`` step of the GitHub workflow and every GitLab ``script:`` line.

The commands are taken from the document's YAML blocks and run in bash, in
a small made-up project, with the values GitHub or GitLab would put in their
expressions; the actions (``uses:``) are not run, but the cache step is
checked to cache what the commands use under the key they print.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

DOC = (Path(__file__).resolve().parent.parent / "docs" / "ci.md").read_text(encoding="utf-8")

PROJECT_TESTS = {
    "test_answers.py": """
        import emx_demo

        def test_answer_is_the_major_version(envmatrix_combination):
            assert emx_demo.answer() == int(envmatrix_combination["emx-demo"].split(".")[0])

        def test_has_a_version():
            assert emx_demo.__version__
        """,
    "test_more.py": """
        import emx_demo
        import pytest

        @pytest.mark.parametrize("n", range(2))
        def test_numbers(n):
            assert emx_demo.answer() >= 1
        """,
}
VERSIONS = ("1.0", "2.0", "3.0")


def workflows() -> list[dict]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC, re.DOTALL)
    return [yaml.safe_load(block) for block in blocks]


def github() -> dict:
    (found,) = [w for w in workflows() if "jobs" in w]
    return found


def gitlab() -> dict:
    (found,) = [w for w in workflows() if "envmatrix" in w]
    return found["envmatrix"]


@pytest.fixture
def project(pytester, demo_wheels, base_wheels, hermetic_installer, monkeypatch, tmp_path):
    """A suite-wide matrix over three versions of emx-demo, installing from local folders only."""
    pytester.makepyprojecttoml(
        f"""
        [tool.pytest.ini_options]
        envmatrix_axes = ["emx-demo={','.join(VERSIONS)}"]
        envmatrix_find_links = ["{demo_wheels}", "{base_wheels}"]
        envmatrix_no_index = true
        """
    )
    for name, text in PROJECT_TESTS.items():
        pytester.makepyfile(**{name[:-3]: text})
    # the recipe's "pip install" finds the plugin installed already, and must not reach out for it
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    # a runner's home, where the recipe's caches are: the default places of the environment cache and uv's
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("XDG_CACHE_HOME", "UV_CACHE_DIR", "PYTEST_ENVMATRIX_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    return pytester.path


class Runner:
    """Runs a step's commands in bash, with GitHub's files for outputs and the summary."""

    def __init__(self, cwd: Path, env: dict[str, str], tmp: Path) -> None:
        self.cwd, self.env, self.tmp = cwd, env, tmp
        self.commands: list[str] = []

    def run(self, script: str, outputs: dict | None = None) -> dict[str, str]:
        self.commands.append(script)
        output_file = self.tmp / "github-output"
        output_file.write_text("")
        env = {**os.environ, **self.env, "GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(self.tmp / "summary.md")}
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script], cwd=self.cwd, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{script}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        lines = [line for line in output_file.read_text().splitlines() if "=" in line]
        return dict(line.split("=", 1) for line in lines)


def fill(text: str, values: dict[str, str]) -> str:
    """GitHub's ``${{ ... }}`` expressions, filled from ``values``; any other is an error."""

    def one(match: re.Match) -> str:
        expression = match.group(1).strip()
        assert expression in values, f"the test does not know what GitHub puts for ${{{{ {expression} }}}}"
        return values[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def test_the_github_workflow_runs_every_shard_and_covers_every_test_once(project, tmp_path):
    workflow = github()
    values = {"runner.os": "Linux"}
    env = {name: fill(str(value), values) for name, value in workflow["env"].items()}
    runner = Runner(project, env, tmp_path)

    plan = workflow["jobs"]["plan"]
    outputs: dict[str, str] = {}
    for step in plan["steps"]:
        if "run" in step:
            outputs.update({f"steps.{step.get('id')}.outputs.{k}": v for k, v in runner.run(fill(step["run"], values)).items()})
    job_outputs = {name: fill(value, outputs) for name, value in plan["outputs"].items()}
    listed = json.loads((project / "matrix.json").read_text())
    shards = json.loads(job_outputs["shards"])
    assert shards == ["1/3", "2/3", "3/3"]  # three environments over SHARDS=3

    test_job = workflow["jobs"]["test"]
    assert test_job["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.plan.outputs.shards) }}"
    cache_step = next(step for step in test_job["steps"] if str(step.get("uses", "")).startswith("actions/cache@"))
    keys = []
    for index, shard in enumerate(shards):
        values.update({"matrix.shard": shard, "strategy.job-index": str(index)})
        step_outputs: dict[str, str] = {}
        for step in test_job["steps"]:
            if "run" in step:
                found = runner.run(fill(step["run"], values))
                step_outputs.update({f"steps.{step.get('id')}.outputs.{k}": v for k, v in found.items()})
        # the cache step caches the directories the commands used, under the key the shard printed
        key = step_outputs["steps.key.outputs.key"]
        assert key == listed["shards"][index]["cache_key"]
        keys.append(key)
        cache = fill(cache_step["with"]["key"], {**values, **step_outputs})
        assert cache == f"envmatrix-Linux-{key}"
        paths = [Path(path).expanduser() for path in fill(cache_step["with"]["path"], values).split()]
        assert paths == [Path(os.environ["HOME"], ".cache", "pytest-envmatrix"), Path(os.environ["HOME"], ".cache", "uv")]
        assert (paths[0] / "envs").is_dir() and (paths[0] / "CACHEDIR.TAG").is_file()
        assert (paths[1] / "CACHEDIR.TAG").is_file()
    assert len(set(keys)) == 3

    ran = []
    for index in range(len(shards)):
        suite = ET.parse(project / f"junit-{index}.xml").getroot()
        cases = [f"{case.get('name')}" for case in suite.iter("testcase")]
        assert all(case.find("failure") is None and case.find("error") is None for case in suite.iter("testcase"))
        ran.extend(cases)
    expected = [f"{name}[emx-demo-{v}]" for v in VERSIONS for name in ("test_answer_is_the_major_version", "test_has_a_version")]
    expected += [f"test_numbers[emx-demo-{v}-{n}]" for v in VERSIONS for n in range(2)]
    assert sorted(ran) == sorted(expected)
    # the report job merges what the shards uploaded: one report and one grid for every item
    report_job = workflow["jobs"]["report"]
    summary = tmp_path / "summary.md"
    summary.write_text("")
    for step in report_job["steps"]:
        if "run" in step:
            runner.run(fill(step["run"], values))
    merged = json.loads((project / "report.json").read_text())
    assert sorted(item["nodeid"].rsplit("::", 1)[-1] for item in merged["items"]) == sorted(expected)
    assert all(item["outcome"] == "passed" for item in merged["items"])
    grid = summary.read_text()
    assert all(f"emx-demo-{v}" in grid for v in VERSIONS), grid
    # every run: step of every job ran (the upload, download and cache actions are GitHub's own)
    runs = lambda job: sum("run" in step for step in job["steps"])  # noqa: E731
    assert len(runner.commands) == runs(plan) + len(shards) * runs(test_job) + runs(report_job)


def test_the_gitlab_job_runs_every_shard(project, tmp_path):
    job = gitlab()
    total = job["parallel"]
    ran = []
    for index in range(1, total + 1):
        variables = {"CI_PROJECT_DIR": str(project), "CI_NODE_INDEX": str(index), "CI_NODE_TOTAL": str(total)}
        env = {**variables, **{name: value.replace("$CI_PROJECT_DIR", str(project)) for name, value in job["variables"].items()}}
        runner = Runner(project, env, tmp_path)
        for line in job["script"]:
            runner.run(line)
        assert len(runner.commands) == len(job["script"])
        suite = ET.parse(project / job["artifacts"]["reports"]["junit"]).getroot()
        ran.extend(case.get("name") for case in suite.iter("testcase"))
        for path in job["cache"]["paths"]:
            assert (project / path).is_dir()
    assert len(ran) == 12 and len(set(ran)) == 12
