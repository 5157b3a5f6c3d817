"""Options and ini settings: precedence and the errors a bad value gets."""

import pytest


@pytest.mark.parametrize(
    "args, ini, message",
    [
        (["--envmatrix-jobs=0"], "", "--envmatrix-jobs: 0 must be at least 1"),
        ([], "envmatrix_jobs = many", "ini option envmatrix_jobs: 'many' is not a whole number"),
        ([], "envmatrix_timeout = soon", "ini option envmatrix_timeout: 'soon' is not a number of seconds"),
        ([], "envmatrix_deps =\n    numpy>>1", "ini option envmatrix_deps: 'numpy>>1' is not a valid requirement"),
        (["--envmatrix-prune"], "envmatrix_max_age_days = -1", "ini option envmatrix_max_age_days: -1 must be at least 0"),
        ([], "envmatrix_require_python = maybe", "ini option envmatrix_require_python: invalid truth value 'maybe' (write true or false)"),
    ],
)
def test_bad_settings_are_usage_errors_naming_the_source(pytester, args, ini, message):
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--envmatrix", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_asking_for_uv_where_there_is_none_is_a_usage_error(pytester, monkeypatch):
    import pytest_envmatrix.installer as installer

    monkeypatch.setattr(installer, "find_uv", lambda: None)
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--envmatrix", "--envmatrix-installer=uv")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*envmatrix installer 'uv' was asked for, but uv is neither importable nor on PATH*"])


def test_command_line_beats_ini_and_settings_show_in_the_header(pytester):
    pytester.makeini("[pytest]\nenvmatrix_installer = uv\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--envmatrix", "--envmatrix-installer=pip", f"--envmatrix-cache-dir={pytester.path / 'c'}")
    result.stdout.fnmatch_lines([f"envmatrix: installer pip, cache {pytester.path / 'c'}"])


@pytest.mark.parametrize("option", ["--envmatrix-cache-dir", "--envmatrix-find-links"])
def test_a_path_option_given_as_a_separate_word_is_named_at_the_top_with_the_fix(pytester, tmp_path, option):
    """pytest picks the rootdir and ini file before it knows plugin options: the path looks like a test path."""
    pytester.makeini("[pytest]\nenvmatrix_deps =\n    attrs\n")
    pytester.makepyfile("def test_x(): pass")
    elsewhere = tmp_path / "elsewhere" / "dir"
    elsewhere.mkdir(parents=True)
    cache = [f"--envmatrix-cache-dir={tmp_path / 'cache'}"] if option != "--envmatrix-cache-dir" else []
    result = pytester.runpytest("--envmatrix-list", *cache, option, str(elsewhere))
    assert result.ret == 0
    lines = result.stdout.lines
    warning = [i for i, line in enumerate(lines) if line.startswith(f"envmatrix: {option} {elsewhere} is written as two words")]
    assert warning, result.stdout.str()
    assert warning[0] < next(i for i, line in enumerate(lines) if line.startswith("collected"))  # at the top
    result.stdout.fnmatch_lines(
        [
            f"*pytest took {elsewhere} for a test path when it chose the rootdir and ini file:*"
            f"not {pytester.path / 'tox.ini'}*; write {option}={elsewhere}",
        ]
    )


def test_a_path_option_written_with_equals_gets_no_warning(pytester, tmp_path):
    pytester.makeini("[pytest]\nenvmatrix_deps =\n    attrs\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--envmatrix-list", f"--envmatrix-cache-dir={tmp_path / 'cache'}")
    assert result.ret == 0
    assert "two words" not in result.stdout.str()


def test_a_separate_word_that_did_not_move_the_ini_file_gets_no_warning(pytester, tmp_path):
    pytester.makeini("[pytest]\nenvmatrix_deps =\n    attrs\n")
    pytester.makepyfile("def test_x(): pass")
    inside = pytester.mkdir("wheels")
    result = pytester.runpytest("--envmatrix-list", f"--envmatrix-cache-dir={tmp_path / 'cache'}", "--envmatrix-find-links", str(inside))
    assert result.ret == 0
    assert "two words" not in result.stdout.str()


def test_the_index_options_have_an_ini_form(fresh_matrix, demo_wheels, base_wheels):
    """A project that always installs from local folders says so once, in its ini file, free of the two-word trap.

    emx-demo is only in the local folder, and the ini's index is unreachable:
    the run passes only if all three ini options are in force.
    """
    wheels = fresh_matrix.pytester.mkdir("wheels")
    for wheel in [*demo_wheels.glob("emx_demo-2.0-*.whl"), *base_wheels.glob("*.whl")]:
        (wheels / wheel.name).symlink_to(wheel)
    fresh_matrix.pytester.makeini(
        "[pytest]\nenvmatrix_index_url = http://127.0.0.1:9/simple/\nenvmatrix_find_links =\n    wheels\nenvmatrix_no_index = true\n"
    )
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["2.0"])
        def test_two():
            import emx_demo
            assert emx_demo.answer() == 2
        """
    )
    result = fresh_matrix.pytester.runpytest("--envmatrix", f"--envmatrix-cache-dir={fresh_matrix.cache}")
    result.assert_outcomes(passed=1)


def test_index_options_on_the_command_line_come_before_the_ini_ones(pytester, tmp_path):
    from pytest_envmatrix.plugin import SETTINGS_KEY

    pytester.makeini("[pytest]\nenvmatrix_index_url = http://ini/simple/\nenvmatrix_find_links =\n    ini-wheels\n    https://ini/links/\n")
    plain = pytester.parseconfigure()
    index = plain.stash[SETTINGS_KEY].index
    assert index.index_url == "http://ini/simple/"
    assert index.find_links == (str(pytester.path / "ini-wheels"), "https://ini/links/")  # relative to the ini file
    assert not index.no_index
    config = pytester.parseconfigure("--envmatrix-index-url=http://cli/simple/", "--envmatrix-find-links=cli-wheels", "--envmatrix-no-index")
    index = config.stash[SETTINGS_KEY].index
    assert index.index_url == "http://cli/simple/"
    assert index.find_links == (str(pytester.path / "cli-wheels"),)  # the command line's list replaces the ini's
    assert index.no_index
