"""Faults injected for real: crashes, hangs, interrupts, killed builds, full disks, rival processes."""

import json
import os
import resource
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals and process groups are POSIX")

CRASHES = {
    "segfault": ("import ctypes; ctypes.string_at(0)", ["killed by SIGSEGV", "Fatal Python error: Segmentation fault"]),
    "exit": ("os._exit(3)", ["exit code 3"]),
    "abort": ("os.abort()", ["killed by SIGABRT"]),
    "sigkill": ("os.kill(os.getpid(), signal.SIGKILL)", ["killed by SIGKILL"]),
}


def wait_for(predicate, seconds=60.0, what="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def read_some(proc: subprocess.Popen, deadline: float, seen: str = "") -> str:
    """The next output a process writes to its stdout pipe, waited for until ``deadline`` (time.monotonic)."""
    fd = proc.stdout.fileno()
    ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
    assert ready, f"no output from {proc.args!r} in time; so far: {seen!r}"
    chunk = os.read(fd, 4096).decode()
    assert chunk, f"{proc.args!r} closed its output; so far: {seen!r}"
    return chunk


def first_line(proc: subprocess.Popen, seconds: float = 60.0) -> str:
    """The first line a process prints, waited for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    seen = ""
    while "\n" not in seen:
        seen += read_some(proc, deadline, seen)
    return seen.split("\n", 1)[0]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def builds(cache: Path) -> list[dict]:
    log = cache / "builds.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize("kind", sorted(CRASHES))
def test_a_crashing_test_fails_alone_and_the_rest_still_run(matrix, kind):
    code, expected = CRASHES[kind]
    matrix.pytester.makepyfile(
        f"""
        import os, signal, sys
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0"])

        def test_before():
            pass

        def test_crash():
            {code}

        def test_after():
            import emx_demo
            assert emx_demo.answer() == 1
        """
    )
    result = matrix.run("-v")
    assert result.ret == 1
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*::test_before[[]emx_demo-1.0[]] PASSED*",
            "*::test_crash[[]emx_demo-1.0[]] FAILED*",
            "*::test_after[[]emx_demo-1.0[]] PASSED*",
        ]
    )
    out = result.stdout.str()
    assert "envmatrix: the child pytest in emx_demo-1.0 crashed while running this test" in out
    for text in expected:
        assert text in out
    result.stdout.fnmatch_lines(["envmatrix: emx_demo-1.0: the child crashed (*) on *test_crash*; restarted it on the 1 remaining test(s)"])


def test_a_hanging_test_times_out_and_its_process_group_dies(matrix, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    matrix.pytester.makepyfile(
        f"""
        import subprocess, time
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0"])

        def test_hang():
            grandchild = subprocess.Popen(["sleep", "300"])
            open({str(pidfile)!r}, "w").write(str(grandchild.pid))
            time.sleep(300)

        def test_after():
            pass
        """
    )
    result = matrix.run("-v", "--envmatrix-timeout=3")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*::test_hang[[]emx_demo-1.0[]] FAILED*", "*::test_after[[]emx_demo-1.0[]] PASSED*"])
    result.stdout.fnmatch_lines(["envmatrix: timed out after 3 s in emx_demo-1.0"])
    grandchild = int(pidfile.read_text())
    wait_for(lambda: not pid_alive(grandchild), 10, "the grandchild to die")


def test_ctrl_c_ends_the_children_and_keeps_the_results(matrix, tmp_path):
    pidfile = tmp_path / "child.pid"
    matrix.pytester.makepyfile(
        f"""
        import os, time
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0"])

        def test_first():
            pass

        def test_sleeps():
            open({str(pidfile)!r}, "w").write(str(os.getpid()))
            time.sleep(300)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-v", *matrix.options()],
        cwd=matrix.pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    seen = ""
    deadline = time.monotonic() + 120
    while "test_first[emx_demo-1.0] PASSED" not in seen:  # until the parent has shown the first result
        seen += read_some(proc, deadline, seen)
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 120, "the child to start the sleeping test")
    child = int(pidfile.read_text())
    assert pid_alive(child)
    proc.send_signal(signal.SIGINT)
    out = seen + proc.communicate(timeout=60)[0]
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "KeyboardInterrupt" in out
    assert "1 passed" in out
    wait_for(lambda: not pid_alive(child), 10, "the child to die")


def test_a_killed_parent_takes_its_children_with_it(matrix, tmp_path):
    """SIGKILL gives the parent no chance to clean up: the child's supervisor learns of it and ends everything the child started."""
    pidfile = tmp_path / "pids"
    matrix.pytester.makepyfile(
        f"""
        import os, subprocess, time
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_sleeps():
            grandchild = subprocess.Popen(["sleep", "300"])
            open({str(pidfile)!r}, "w").write(f"{{os.getpid()}} {{grandchild.pid}}")
            time.sleep(300)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-m", "pytest", *matrix.options()],
        cwd=matrix.pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 2, 120, "the child to start its test")
        child, grandchild = map(int, pidfile.read_text().split())
        assert pid_alive(child) and pid_alive(grandchild)
    finally:
        parent.kill()
        parent.wait(timeout=60)
    wait_for(lambda: not pid_alive(child), 10, "the orphaned child to end")
    wait_for(lambda: not pid_alive(grandchild), 10, "the orphaned child's own child to end")


SLOW_BACKEND = '''
import os, time, zipfile, base64, hashlib

def _record(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    started = os.environ.get("EMX_SLOW_STARTED")
    if started:
        open(started, "w").write(str(os.getpid()))
    time.sleep(float(os.environ.get("EMX_SLOW_SECONDS", "0")))
    files = {
        "emx_slow/__init__.py": b"VALUE = 'slow'\\n",
        "emx_slow-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: emx-slow\\nVersion: 1.0\\n",
        "emx_slow-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    records = [_record(n, d) for n, d in files.items()] + ["emx_slow-1.0.dist-info/RECORD,,"]
    name = "emx_slow-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)
        zf.writestr("emx_slow-1.0.dist-info/RECORD", "\\n".join(records) + "\\n")
    return name
'''


@pytest.fixture
def slow_package(tmp_path, monkeypatch):
    """A local project whose build sleeps ``EMX_SLOW_SECONDS``: a build that is easy to catch mid-way."""
    root = tmp_path / "emx-slow"
    root.mkdir()
    (root / "backend.py").write_text(SLOW_BACKEND)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        '[project]\nname = "emx-slow"\nversion = "1.0"\n'
    )
    monkeypatch.setenv("EMX_SLOW_STARTED", str(tmp_path / "build-started"))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))  # uv must really build it each time
    return root


def slow_test_file(pytester, slow_package):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"], deps=["emx-slow @ {slow_package.as_uri()}"])
        def test_slow_env():
            import emx_slow
            assert emx_slow.VALUE == "slow"
        """
    )


def test_a_build_killed_midway_is_rebuilt_by_the_next_run(fresh_matrix, slow_package, monkeypatch, tmp_path):
    slow_test_file(fresh_matrix.pytester, slow_package)
    monkeypatch.setenv("EMX_SLOW_SECONDS", "300")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *fresh_matrix.options()],
        cwd=fresh_matrix.pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    started = tmp_path / "build-started"
    wait_for(lambda: started.exists() and started.read_text().strip(), 120, "the build to start")
    os.killpg(proc.pid, signal.SIGKILL)  # the whole pytest process, installer and build included
    proc.wait(timeout=60)
    (env_dir,) = (fresh_matrix.cache / "envs").iterdir()
    assert not (env_dir / "envmatrix.json").exists()  # half-built, and not marked complete

    monkeypatch.setenv("EMX_SLOW_SECONDS", "0")
    result = fresh_matrix.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 built*, 0 reused*"])
    assert (env_dir / "envmatrix.json").exists()


def test_two_processes_build_each_environment_once(fresh_matrix, slow_package, monkeypatch):
    slow_test_file(fresh_matrix.pytester, slow_package)
    monkeypatch.setenv("EMX_SLOW_SECONDS", "6")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *fresh_matrix.options()]
    procs = [
        subprocess.Popen(command, cwd=fresh_matrix.pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert all("1 passed" in out for out in outputs)
    assert len(builds(fresh_matrix.cache)) == 1
    waited = [out for out in outputs if "waiting for another process building" in out]
    assert len(waited) == 1, outputs
    assert "emx-demo==1.0 emx-slow @ file:" in waited[0]


def test_a_lock_left_by_a_dead_process_does_not_block(fresh_matrix):
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["2.0"])
        def test_ok():
            pass
        """
    )
    listing = fresh_matrix.run("--envmatrix-list").stdout.str()
    key = next(line.split()[0] for line in listing.splitlines() if "emx-demo==2.0" in line and "items" in line)
    lock = fresh_matrix.cache / "locks" / f"{key}.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import time, filelock; held = filelock.FileLock({str(lock)!r}); held.acquire(); print('locked', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first_line(holder).strip() == "locked"
    holder.kill()
    holder.wait(timeout=60)
    assert lock.exists()
    fresh_matrix.run().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "installer, message",
    [
        # pip (Python) gets the OS error; uv is ended by the kernel's SIGXFSZ
        ("pip", "File too large"),
        ("uv", "killed by SIGXFSZ: File size limit exceeded"),
    ],
)
def test_a_full_disk_errors_that_environment_and_leaves_nothing_half_built(fresh_matrix, tmp_path, installer, message):
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_ok():
            pass
        """
    )

    def small_disk():
        # every file this process tree writes is capped at 64 kB: the packages' files are larger
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    # PYTHONDONTWRITEBYTECODE: under the cap, this pytest's own imports would leave truncated
    # bytecode in the Python that runs the suite (a short write is not an error to the import system)
    env = dict(os.environ, UV_CACHE_DIR=str(tmp_path / "uv-cache"), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--envmatrix-installer={installer}", *fresh_matrix.options()],
        cwd=fresh_matrix.pytester.path,
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout
    assert "could not build emx-demo==1.0" in proc.stdout
    assert message in proc.stdout, proc.stdout
    assert "1 error" in proc.stdout
    assert list((fresh_matrix.cache / "envs").iterdir()) == []


def test_an_unusable_cache_directory_is_reported(fresh_matrix):
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_ok():
            pass
        """
    )
    fresh_matrix.cache.mkdir()
    (fresh_matrix.cache / "envs").write_text("a file where the environments should go")
    result = fresh_matrix.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the environment cache * is not usable: *File exists*"])


def test_a_cache_path_with_spaces_and_non_ascii_works(fresh_matrix, tmp_path):
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["3.0"])
        def test_ok():
            import emx_demo
            assert emx_demo.answer() == 3
        """
    )
    cache = tmp_path / "cache dir with spaces ünïcødé"
    fresh_matrix.run(cache=cache).assert_outcomes(passed=1)
    fresh_matrix.run(cache=cache).stdout.fnmatch_lines(["*0 built*, 1 reused*"])


def test_a_module_that_fails_to_import_in_the_child_errors_its_items(matrix):
    matrix.pytester.makepyfile(
        """
        import importlib.util
        import pytest

        if importlib.util.find_spec("pytest_envmatrix") is None:  # true in the child only
            raise RuntimeError("this module breaks inside the environment")

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_one():
            pass

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_two():
            pass
        """
    )
    result = matrix.run("-v")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["envmatrix: the child pytest in emx_demo-1.0 could not collect this test", "*RuntimeError: this module breaks inside the environment*"]
    )
    # each item shows the collection error once, not again in the child's output
    assert result.stdout.str().count("RuntimeError: this module breaks inside the environment") == 2


def test_an_item_the_child_never_reports_is_an_error_not_a_pass(matrix):
    matrix.pytester.makeconftest(
        """
        import importlib.util

        def pytest_collection_modifyitems(items):
            if importlib.util.find_spec("pytest_envmatrix") is None:  # the child drops one test
                items[:] = [i for i in items if "dropped" not in i.name]
        """
    )
    matrix.pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0"])

        def test_kept():
            pass

        def test_dropped():
            pass
        """
    )
    result = matrix.run("-v")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["envmatrix: the child pytest in emx_demo-1.0 did not find this test"])


def test_an_unreachable_index_fails_new_environments_and_cached_ones_still_run(fresh_matrix, demo_wheels, base_wheels):
    index = fresh_matrix.pytester.path.parent / "simple-index"
    for name in ("emx-demo",):
        page = index / name
        page.mkdir(parents=True)
        links = "".join(f'<a href="{w.as_uri()}">{w.name}</a>\n' for w in demo_wheels.glob("emx_demo-*.whl"))
        page.joinpath("index.html").write_text(f"<html><body>\n{links}</body></html>\n")
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0", "--directory", str(index.parent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:  # -u: the line naming the port must not wait in a pipe buffer (PYTHONUNBUFFERED may be unset)
        port = int(first_line(server, 60).split(" port ")[1].split()[0])
    except Exception:
        server.kill()
        raise
    options = [
        "--envmatrix",
        f"--envmatrix-cache-dir={fresh_matrix.cache}",
        f"--envmatrix-index-url=http://127.0.0.1:{port}/simple-index/",
        f"--envmatrix-find-links={base_wheels}",
    ]
    fresh_matrix.pytester.makepyfile(
        test_net="""
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_cached():
            pass
        """
    )
    try:
        fresh_matrix.pytester.runpytest(*options).assert_outcomes(passed=1)
    finally:
        server.kill()
        server.wait(timeout=60)
    fresh_matrix.pytester.makepyfile(
        test_net="""
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        def test_cached():
            pass
        """
    )
    result = fresh_matrix.pytester.runpytest(*options, "-v")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_cached[[]emx_demo-1.0[]] PASSED*", "*test_cached[[]emx_demo-2.0[]] ERROR*"])
    result.stdout.fnmatch_lines(["*could not build emx-demo==2.0*", f"*127.0.0.1:{port}*"])


def test_xdist_runs_every_item_once_and_builds_each_environment_once(fresh_matrix, tmp_path):
    pytest.importorskip("xdist")
    runs = tmp_path / "runs.txt"
    fresh_matrix.pytester.makepyfile(
        f"""
        import os
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])

        @pytest.mark.parametrize("n", range(4))
        def test_many(n, envmatrix_combination):
            with open({str(runs)!r}, "a") as f:
                f.write(f"{{envmatrix_combination['emx_demo']}} {{n}} {{os.getpid()}}\\n")
        """
    )
    result = fresh_matrix.run("-n", "2", "-v", subprocess=True)
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*envmatrix: environments: 2 built*"])  # another worker may reuse one
    assert result.stdout.str().count("PASSED") == 8
    assert sorted(b["label"] for b in builds(fresh_matrix.cache)) == ["emx-demo==1.0", "emx-demo==2.0"]
    lines = [line.split() for line in runs.read_text().splitlines()]
    # every item ran exactly once: no worker ran another worker's items
    assert sorted((v, n) for v, n, _ in lines) == [(v, str(n)) for v in ("1.0", "2.0") for n in range(4)]
    # and each environment's items went to one worker, which ran them in one child
    assert {v: len({pid for version, _, pid in lines if version == v}) for v in ("1.0", "2.0")} == {"1.0": 1, "2.0": 1}


def test_xdist_summary_counts_each_environment_once(fresh_matrix):
    """Every worker looks up the environments of its items: the summary still counts each one once."""
    pytest.importorskip("xdist")
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])

        @pytest.mark.parametrize("n", range(10))
        def test_many(n):
            pass
        """
    )
    first = fresh_matrix.run("-n", "2", subprocess=True)
    first.assert_outcomes(passed=20)
    first.stdout.fnmatch_lines(["*envmatrix: environments: 2 built (*s), 0 reused*"])
    second = fresh_matrix.run("-n", "2", subprocess=True)
    second.assert_outcomes(passed=20)
    second.stdout.fnmatch_lines(["*envmatrix: environments: 0 built (*s), 2 reused*"])


def test_refuses_a_symlinked_environment_and_a_foreign_cache(fresh_matrix, tmp_path):
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_ok():
            pass
        """
    )
    fresh_matrix.run().assert_outcomes(passed=1)
    (env_dir,) = (fresh_matrix.cache / "envs").iterdir()
    assert len(env_dir.name) == 16 and all(c in "0123456789abcdef" for c in env_dir.name)
    elsewhere = tmp_path / "elsewhere"
    env_dir.rename(elsewhere)
    (elsewhere / "envmatrix.json").unlink()
    env_dir.symlink_to(elsewhere, target_is_directory=True)
    result = fresh_matrix.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*refusing to use *: it is a symbolic link*"])
    assert elsewhere.is_dir() and env_dir.is_symlink()

    if os.getuid() == 0:  # root can hand the cache to another user; others cannot make one
        env_dir.unlink()
        os.chown(fresh_matrix.cache, 65534, 65534)
        result = fresh_matrix.run()
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*refusing to use the environment cache *: it belongs to user id 65534*"])


def test_prune_removes_old_environments_but_not_one_being_built_or_used(fresh_matrix, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # bytecode goes to the cache's shared folder
    started = tmp_path / "started"
    fresh_matrix.pytester.makepyfile(
        f"""
        import os, time
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0", "3.0"])
        def test_ok(envmatrix_combination):
            if os.environ.get("EMX_HOLD") == envmatrix_combination["emx_demo"]:
                open({str(started)!r}, "w").write("running")
                time.sleep(300)
        """
    )
    fresh_matrix.run().assert_outcomes(passed=3)
    envs = {m["label"]: fresh_matrix.cache / "envs" / k for k, m in fresh_matrix.envs().items()}

    # 2.0 is being built by another process: it holds the build lock
    lock = fresh_matrix.cache / "locks" / f"{envs['emx-demo==2.0'].name}.lock"
    builder = subprocess.Popen(
        [sys.executable, "-c", f"import time, filelock; held = filelock.FileLock({str(lock)!r}); held.acquire(); print('locked', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    # 3.0 is in use by a run whose test is still going
    user = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *fresh_matrix.options(), "-k", "emx_demo-3.0"],
        cwd=fresh_matrix.pytester.path,
        env=dict(os.environ, EMX_HOLD="3.0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert first_line(builder).strip() == "locked"
        wait_for(started.exists, 120, "the run using 3.0 to start its test")
        old = time.time() - 40 * 86400
        for env in envs.values():
            os.utime(env / "envmatrix-last-used", (old, old))
        result = fresh_matrix.pytester.runpytest_subprocess(f"--envmatrix-cache-dir={fresh_matrix.cache}", "--envmatrix-prune", timeout=120)
    finally:
        for proc in (builder, user):
            proc.kill()
            proc.wait(timeout=60)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [f"envmatrix: removed {envs['emx-demo==1.0']} (*MB)", "envmatrix: pruned 1 environment(s) unused for 30 days from *, freed *MB"]
    )
    assert not envs["emx-demo==1.0"].exists()
    assert envs["emx-demo==2.0"].exists() and envs["emx-demo==3.0"].exists()
    bytecode = {label: fresh_matrix.cache / "pycache" / env.relative_to(env.anchor) for label, env in envs.items()}
    assert not bytecode["emx-demo==1.0"].exists()  # its bytecode went with it
    assert list(bytecode["emx-demo==2.0"].rglob("_pytest/*.pyc"))  # every child imports pytest
