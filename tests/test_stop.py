"""Every end of a run ends what the run started: waits for locks, builds, children and their descendants."""

import os
import signal
import subprocess
import sys
import time

import pytest

from test_faults import builds, first_line, pid_alive, read_some, slow_test_file, wait_for
from test_faults import slow_package  # noqa: F401 (a fixture, asked for by name)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals and process groups are POSIX")

STOP_BOUND = 5.0  # seconds from Ctrl-C or the failure to the end of the run; it takes well under one


def env_key(runner, requirement: str) -> str:
    listing = runner.run("--envmatrix-list").stdout.str()
    return next(line.split()[0] for line in listing.splitlines() if requirement in line and "items" in line)


def hold_lock(runner, key: str) -> subprocess.Popen:
    """Another process that takes an environment's build lock and keeps it."""
    lock = runner.cache / "locks" / f"{key}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import time, filelock; held = filelock.FileLock({str(lock)!r}); held.acquire(); print('locked', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first_line(holder).strip() == "locked"
    return holder


def start_pytest(runner, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *runner.options(), *args],
        cwd=runner.pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def read_until(proc: subprocess.Popen, text: str, seconds: float = 120) -> str:
    seen = ""
    deadline = time.monotonic() + seconds
    while text not in seen:
        seen += read_some(proc, deadline, seen)
    return seen


def test_ctrl_c_while_another_process_holds_the_build_lock_ends_at_once(fresh_matrix):
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["2.0"])
        def test_ok():
            pass
        """
    )
    holder = hold_lock(fresh_matrix, env_key(fresh_matrix, "emx-demo==2.0"))
    try:
        proc = start_pytest(fresh_matrix)
        seen = read_until(proc, "waiting for another process building emx-demo==2.0")
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        try:
            out = seen + proc.communicate(timeout=60)[0]
        finally:
            proc.kill()
        stopped = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert stopped < STOP_BOUND, (stopped, out)
    assert builds(fresh_matrix.cache) == []


def test_x_after_a_failure_does_not_wait_for_nor_build_an_environment_nobody_needs(fresh_matrix):
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        def test_fails_in_1(envmatrix_combination):
            assert envmatrix_combination["emx_demo"] != "1.0"
        """
    )
    holder = hold_lock(fresh_matrix, env_key(fresh_matrix, "emx-demo==2.0"))
    try:
        proc = start_pytest(fresh_matrix, "-x", "-v", "--envmatrix-jobs=2")
        seen = read_until(proc, "FAILED")
        start = time.monotonic()
        try:
            out = seen + proc.communicate(timeout=60)[0]
        finally:
            proc.kill()
        stopped = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, out
    assert "1 failed" in out
    assert stopped < STOP_BOUND, (stopped, out)
    assert [b["label"] for b in builds(fresh_matrix.cache)] == ["emx-demo==1.0"]


def test_ctrl_c_during_a_build_kills_the_installer_and_removes_the_half_built_environment(fresh_matrix, request, monkeypatch, tmp_path):
    slow_test_file(fresh_matrix.pytester, request.getfixturevalue("slow_package"))
    monkeypatch.setenv("EMX_SLOW_SECONDS", "300")
    proc = start_pytest(fresh_matrix)
    started = tmp_path / "build-started"
    try:
        wait_for(lambda: started.exists() and started.read_text().strip(), 120, "the build to start")
        backend = int(started.read_text())
        assert pid_alive(backend)
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        out = proc.communicate(timeout=60)[0]
        stopped = time.monotonic() - start
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert stopped < STOP_BOUND, (stopped, out)
    wait_for(lambda: not pid_alive(backend), 5, "the build backend to die")
    assert list((fresh_matrix.cache / "envs").iterdir()) == []
    assert builds(fresh_matrix.cache) == []


ESCAPING_TEST = """
import os, subprocess, sys, time
import pytest

PIDFILE = {pidfile!r}


def start_escaping_grandchild():
    # a new session (out of the child's process group), deaf to SIGTERM; its pid once it is both
    code = (
        "import os, signal, time; os.setsid(); signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "open(PIDFILE + '.tmp', 'w').write(str(os.getpid())); os.replace(PIDFILE + '.tmp', PIDFILE); time.sleep(300)"
    ).replace("PIDFILE", repr(PIDFILE))
    subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while not os.path.exists(PIDFILE) and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.envmatrix(emx_demo=["1.0"])
def test_escapes():
    start_escaping_grandchild()
    if {hang!r}:
        time.sleep(300)
"""


@pytest.mark.parametrize("end", ["normal end", "timeout", "ctrl-c", "parent killed"])
def test_a_grandchild_that_escapes_the_process_group_ends_with_the_run(matrix, tmp_path, end):
    pidfile = tmp_path / "escaped.pid"
    matrix.pytester.makepyfile(ESCAPING_TEST.format(pidfile=str(pidfile), hang=end != "normal end"))
    if end == "normal end":
        matrix.run().assert_outcomes(passed=1)
    elif end == "timeout":
        result = matrix.run("--envmatrix-timeout=2")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["envmatrix: timed out after 2 s in emx_demo-1.0"])
    else:
        proc = start_pytest(matrix)
        try:
            wait_for(pidfile.exists, 120, "the test to start its grandchild")
            assert pid_alive(int(pidfile.read_text()))
            if end == "ctrl-c":
                proc.send_signal(signal.SIGINT)
                out = proc.communicate(timeout=60)[0]
                assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
            else:
                proc.kill()
        finally:
            proc.kill()
            proc.wait(timeout=60)
    escaped = int(pidfile.read_text())
    try:
        wait_for(lambda: not pid_alive(escaped), 5, "the escaped grandchild to die")
    finally:
        if pid_alive(escaped):
            os.kill(escaped, signal.SIGKILL)


def test_a_killed_parent_takes_a_build_under_way_with_it(fresh_matrix, request, monkeypatch, tmp_path):
    slow_test_file(fresh_matrix.pytester, request.getfixturevalue("slow_package"))
    monkeypatch.setenv("EMX_SLOW_SECONDS", "300")
    proc = start_pytest(fresh_matrix)
    started = tmp_path / "build-started"
    try:
        wait_for(lambda: started.exists() and started.read_text().strip(), 120, "the build to start")
        backend = int(started.read_text())
        assert pid_alive(backend)
    finally:
        proc.kill()  # the parent alone: the installer and the build backend are left to themselves
        proc.wait(timeout=60)
    try:
        wait_for(lambda: not pid_alive(backend), 5, "the build backend to die")
    finally:
        if pid_alive(backend):
            os.kill(backend, signal.SIGKILL)


@pytest.mark.parametrize("warnings_option", [[], ["-W", "error::DeprecationWarning"]], ids=["default", "error"])
def test_a_forking_test_behaves_as_under_plain_pytest(matrix, warnings_option):
    """Python 3.12+ warns when a multi-threaded process forks: the child must stay single-threaded."""
    matrix.pytester.makepyfile(
        """
        import os
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"], python=["3.12"])
        def test_forks():
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            assert os.waitpid(pid, 0)[1] == 0
        """
    )
    result = matrix.run("-v", *warnings_option)
    result.stdout.fnmatch_lines(["*test_forks[[]py3.12-emx_demo-1.0[]] PASSED*"])
    (env,) = [m for m in matrix.envs().values() if m["label"] == "py3.12 emx-demo==1.0"]
    python = matrix.cache / "envs" / env["key"][:16] / env["env_python"]
    plain = subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestUnknownMarkWarning", *warnings_option],
        cwd=matrix.pytester.path, capture_output=True, text=True, timeout=120,
    )
    assert plain.returncode == 0, plain.stdout
    assert plain.stdout.splitlines()[-1].strip("= ").split(" in ")[0] == "1 passed", plain.stdout
    result.assert_outcomes(passed=1, warnings=0)
    assert "multi-threaded" not in result.stdout.str()
