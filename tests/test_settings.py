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
