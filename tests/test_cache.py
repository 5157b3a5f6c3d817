"""What the environment cache does across runs: reuse, rebuild, never trust half-built."""

TWO_VERSIONS = """
import pytest

@pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
def test_a():
    import emx_demo

@pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
def test_b():
    import emx_demo
"""


def test_second_run_reuses_every_environment(fresh_matrix):
    fresh_matrix.pytester.makepyfile(TWO_VERSIONS)
    first = fresh_matrix.run()
    first.assert_outcomes(passed=4)
    first.stdout.fnmatch_lines(["*envmatrix: environments: 2 built*, 0 reused*"])
    marks = fresh_matrix.envs()
    assert len(marks) == 2  # two tests, two versions: one environment per version

    second = fresh_matrix.run()
    second.assert_outcomes(passed=4)
    second.stdout.fnmatch_lines(["*envmatrix: environments: 0 built*, 2 reused*"])
    assert fresh_matrix.envs() == marks  # same builds, untouched


def test_a_key_change_builds_a_new_environment(fresh_matrix):
    fresh_matrix.pytester.makepyfile(TWO_VERSIONS)
    fresh_matrix.run().assert_outcomes(passed=4)
    before = fresh_matrix.envs()
    fresh_matrix.pytester.makeini("[pytest]\nenvmatrix_deps = emx-extra\n")
    result = fresh_matrix.run()
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*2 built*, 0 reused*"])
    after = fresh_matrix.envs()
    assert len(after) == 4 and set(before) < set(after)
    assert all("emx-extra" in m["requirements"] for k, m in after.items() if k not in before)


def test_rebuild_option_rebuilds(fresh_matrix):
    fresh_matrix.pytester.makepyfile(TWO_VERSIONS)
    fresh_matrix.run().assert_outcomes(passed=4)
    before = fresh_matrix.envs()
    result = fresh_matrix.run("--envmatrix-rebuild", "-k", "emx_demo-1.0")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*1 built*, 0 reused*"])
    after = fresh_matrix.envs()
    changed = [k for k in after if after[k]["built_at"] != before[k]["built_at"]]
    assert [after[k]["label"] for k in changed] == ["emx-demo==1.0"]


def test_an_environment_without_completion_mark_is_rebuilt(fresh_matrix):
    fresh_matrix.pytester.makepyfile(TWO_VERSIONS)
    fresh_matrix.run().assert_outcomes(passed=4)
    (env_dir,) = [fresh_matrix.cache / "envs" / k for k, m in fresh_matrix.envs().items() if m["label"] == "emx-demo==1.0"]
    (env_dir / "envmatrix.json").unlink()  # as if the build had been killed before its last step
    (env_dir / "leftover").write_text("half-built")
    result = fresh_matrix.run()
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*1 built*, 1 reused*"])
    assert (env_dir / "envmatrix.json").exists()
    assert not (env_dir / "leftover").exists()


def test_list_prints_the_matrix_and_runs_nothing(fresh_matrix):
    fresh_matrix.pytester.makepyfile(TWO_VERSIONS)
    result = fresh_matrix.run("--envmatrix-list")
    result.stdout.fnmatch_lines(
        [
            "envmatrix: tests and their combinations",
            "*::test_a[[]emx_demo-1.0[]]",
            "envmatrix: environments",
            "  * not built  emx-demo==1.0  (2 items)",
            "  * not built  emx-demo==2.0  (2 items)",
        ]
    )
    assert "passed" not in result.stdout.str()
    assert fresh_matrix.envs() == {}
    fresh_matrix.run("-k", "emx_demo-1.0").assert_outcomes(passed=2)
    result = fresh_matrix.run("--envmatrix-list")
    result.stdout.fnmatch_lines(["  * cached     emx-demo==1.0  (2 items)", "  * not built  emx-demo==2.0  (2 items)"])


def test_an_unbuildable_environment_errors_only_its_items(fresh_matrix):
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["2.0", "9.9"])
        def test_a():
            import emx_demo

        @pytest.mark.envmatrix(emx_demo=["1.0"], deps=["emx-needs-old"])
        def test_ok():
            import emx_needs_old

        @pytest.mark.envmatrix(emx_demo=["3.0"], deps=["emx-needs-old"])
        def test_conflict():
            pass
        """
    )
    result = fresh_matrix.run("-v")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "*::test_a[[]emx_demo-2.0[]] PASSED*",
            "*::test_a[[]emx_demo-9.9[]] ERROR*",
            "*::test_ok[[]emx_demo-1.0[]] PASSED*",
            "*::test_conflict[[]emx_demo-3.0[]] ERROR*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_a[[]emx_demo-9.9[]]*",
            "envmatrix: could not build emx-demo==9.9: *",
            "uv could not install emx-demo==9.9 (exit code *)",
            "command: * pip install *emx-demo==9.9*",
            "output (last lines):",
        ]
    )
    assert "emx-demo" in result.stdout.str().split("ERROR at setup of test_conflict")[1]
    labels = sorted(m["label"] for m in fresh_matrix.envs().values())
    assert labels == ["emx-demo==1.0 emx-needs-old", "emx-demo==2.0"]
    # nothing half-built is left behind
    assert len(list((fresh_matrix.cache / "envs").iterdir())) == 2


def test_cache_dir_from_environment_variable_and_ini(pytester, fresh_matrix, monkeypatch, tmp_path):
    pytester.makepyfile(TWO_VERSIONS)
    opts = [o for o in fresh_matrix.options() if not o.startswith("--envmatrix-cache-dir")]
    from_env = tmp_path / "from env"
    monkeypatch.setenv("PYTEST_ENVMATRIX_CACHE_DIR", str(from_env))
    pytester.runpytest(*opts, "-k", "emx_demo-1.0").assert_outcomes(passed=2)
    assert len(list((from_env / "envs").glob("*/envmatrix.json"))) == 1
    assert (from_env / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")

    monkeypatch.delenv("PYTEST_ENVMATRIX_CACHE_DIR")
    pytester.makeini("[pytest]\nenvmatrix_cache_dir = relative-cache\n")
    pytester.runpytest(*opts, "-k", "emx_demo-1.0").assert_outcomes(passed=2)
    assert len(list((pytester.path / "relative-cache" / "envs").glob("*/envmatrix.json"))) == 1


def test_pip_installer_builds_equivalent_environments(fresh_matrix):
    fresh_matrix.pytester.makepyfile(
        """
        import sys, pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "3.0"])
        def test_version(envmatrix_combination):
            import emx_demo
            assert emx_demo.__version__ == envmatrix_combination["emx_demo"]
            assert sys.prefix in emx_demo.__file__
        """
    )
    result = fresh_matrix.run("--envmatrix-installer=pip", "-v")
    result.assert_outcomes(passed=2)
    assert {m["installer"] for m in fresh_matrix.envs().values()} == {"pip"}
    # a different installer is a different environment
    result = fresh_matrix.run("--envmatrix-installer=uv")
    result.stdout.fnmatch_lines(["*2 built*"])


def test_a_package_that_does_not_exist_is_an_installer_error(fresh_matrix):
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_nonexistent=["1.0"])
        def test_a():
            pass
        """
    )
    result = fresh_matrix.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*could not build emx-nonexistent==1.0*", "*emx-nonexistent*"])


def test_a_project_that_fails_to_build_errors_its_items(fresh_matrix):
    fresh_matrix.pytester.makefile(
        ".toml",
        pyproject="""
        [build-system]
        requires = []
        build-backend = "broken_backend"
        backend-path = ["."]

        [project]
        name = "emx-broken"
        version = "0.1"
        """,
    )
    fresh_matrix.pytester.makepyfile(
        broken_backend="def build_editable(*args, **kwargs):\n    raise RuntimeError('the build backend exploded')\n",
        test_broken="""
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_a():
            pass
        """,
    )
    result = fresh_matrix.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*could not build emx-demo==1.0*", "*the build backend exploded*"])
    assert fresh_matrix.envs() == {}
