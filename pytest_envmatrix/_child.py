"""The child side: runs pytest inside one matrix environment.

Started by the parent as ``<env python> _child.py PLAN.json``. It imports only
the standard library and pytest, so nothing of the plugin (nor packaging,
virtualenv, ...) has to be installed in the environment under test, and
nothing of the parent's site-packages is on its path.

The plan names the items to run (parent node ids) and, per test function, the
one combination to parametrize it with, so node ids here equal the parent's.
A unittest method cannot be parametrized: the plan maps its parent node id
(``TestX::test_x[numpy-2.1.3]``) to the plain method collected here, which
runs as pytest runs it anywhere and is reported under the parent's id.
Every report goes back through pytest's own ``pytest_report_to_serializable``
as one event appended to the plan's event file, flushed at once so the
parent can read results while the child is still running and keeps what a
crashing child managed to report.

An event is a pickle (protocol 4, which every Python pytest runs on reads)
of plain data only, after its length. Pickle rather than JSON because a
report carries three floats, and encoding them as text made JSON a tenth of
what a trivial test costs here; the parent loads the events with an
unpickler that refuses every class, so plain data is all they can hold.
"""

import os
import sys


PARENT_PID_VARIABLE = "ENVMATRIX_PARENT_PID"  # set by the parent for the supervisor, removed before anything else runs
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_END_SECONDS = 1.5  # less than the parent's processes.END_SECONDS; how long the supervisor waits for killed descendants to be reaped before it gives up on them


def _supervise(run_in_child):
    """Fork once; the original process stays behind as a supervisor of everything the fork starts.

    Linux only: elsewhere this returns at once, and the parent can end the
    child's process group only (see ``processes.kill_group``). The process the
    parent started (whose pid it knows) stays single-threaded and tiny: it
    makes itself the subreaper of all its descendants, so a grandchild that
    left the process group (``setsid``) and was orphaned still comes back to
    it; it learns of its parent's death from ``PR_SET_PDEATHSIG`` (and, in
    case the parent died before that was set, from ``getppid``). When the
    runner ends, the parent dies, or the parent asks it to stop (SIGTERM), it
    kills every descendant, reaps them, and exits as the runner did: with its
    exit status, or killed by the same signal, so that the parent's crash
    report still reads "killed by SIGSEGV".

    ``run_in_child()`` runs in the fork (it may exec); this returns there, and
    never in the supervisor. No thread is involved: a thread in the runner
    would make Python 3.12+ warn on every ``os.fork()`` a test makes.
    """
    parent = os.environ.pop(PARENT_PID_VARIABLE, None)
    if not sys.platform.startswith("linux") or not parent or not parent.isdigit():
        run_in_child()
        return
    import signal

    prctl = _libc_prctl()
    prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    watched = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    supervisor = os.getpid()
    runner = os.fork()
    if runner == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the supervisor is single-threaded: no caveat
        if os.getppid() != supervisor:
            os._exit(1)
        run_in_child()
        return
    status = None
    try:
        status = _watch(runner, int(parent), watched)
    finally:
        _end_descendants()
    _exit_like(status)


def _libc_prctl():
    """libc's ``prctl``, through ``_ctypes`` directly: importing ``ctypes`` costs ten times as much (a
    millisecond against ten), and every child pays it before pytest starts."""
    try:
        import _ctypes

        class Int(_ctypes._SimpleCData):
            _type_ = "i"

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL
            _restype_ = Int

        class Libc:
            _handle = _ctypes.dlopen(None, os.RTLD_NOW)

        return Function(("prctl", Libc()))
    except (ImportError, AttributeError, TypeError, OSError):  # another _ctypes than CPython 3.9-3.13's
        import ctypes

        return ctypes.CDLL(None).prctl


def _watch(runner, parent, watched):
    """Wait until the runner ends (its wait status), the parent dies or asks to stop (None)."""
    import signal

    while True:
        try:
            # reap orphans handed to us as they end, too: they must not pile up as zombies
            while True:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == runner:
                    return status
                if pid == 0:
                    break
        except ChildProcessError:
            return None
        if os.getppid() != parent:
            return None
        info = signal.sigtimedwait(watched, 1.0)
        if info is not None and info.si_signo != signal.SIGCHLD:
            return None


def _end_descendants():
    """Kill and reap every descendant: as their subreaper, orphans among them are our own children."""
    import signal
    import time

    deadline = time.monotonic() + _END_SECONDS
    me = os.getpid()
    while time.monotonic() < deadline:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            return  # no child left, so no descendant either
        for pid in _descendants(me):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        signal.sigtimedwait({signal.SIGCHLD}, 0.05)


def _descendants(root):
    """Every living process below ``root``, from ``/proc`` (``/proc/*/task/*/children`` is not always there)."""
    children = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []  # no /proc: the parent kills the process group once this gives up
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def _exit_like(status):
    """End this process as the runner ended: same exit status, or killed by the same signal."""
    if status is None:
        os._exit(1)
    if os.WIFSIGNALED(status):
        import resource
        import signal

        number = os.WTERMSIG(status)
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the runner dumped its core already, if any
            signal.signal(number, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {number})
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), number)
        os._exit(128 + number)
    os._exit(os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else os.WEXITSTATUS(status))


def _exec(command):
    """Replace this process with ``command`` (the supervised installer).

    Python ignores SIGPIPE and SIGXFSZ for itself; the command gets them back
    at their defaults, as ``subprocess`` would give them.
    """
    import signal

    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        sys.stderr.write(f"envmatrix: could not start {command[0]}: {exc}\n")
        sys.stderr.flush()
        os._exit(127)


def _share_stdlib_bytecode():
    """Link the standard library's own bytecode into the bytecode folder, once per interpreter.

    The parent sets ``PYTHONPYCACHEPREFIX`` when the user switched bytecode
    off; Python then looks for all bytecode under that prefix only, and would
    compile the standard library again (about a second for what pytest
    imports) although its ``__pycache__`` is right there. Links to it cost
    milliseconds. A link that goes stale is replaced by Python like any
    outdated bytecode file.
    """
    prefix = sys.pycache_prefix
    if not prefix:
        return
    import importlib.util
    import sysconfig

    tag = sys.implementation.cache_tag
    if tag is None:
        return
    stdlib = sysconfig.get_paths()["stdlib"]
    stamp = os.path.join(prefix, ".stdlib-linked", tag + "-" + stdlib.replace(os.sep, "_"))
    if os.path.exists(stamp):
        return
    skipped = {"site-packages", "dist-packages", "test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip"}
    for folder, subfolders, files in os.walk(stdlib):
        subfolders[:] = [name for name in subfolders if name not in skipped and name != "__pycache__"]
        for name in files:
            if not name.endswith(".py"):
                continue
            compiled = os.path.join(folder, "__pycache__", name[:-3] + "." + tag + ".pyc")
            link = importlib.util.cache_from_source(os.path.join(folder, name))
            try:
                if os.path.isfile(compiled) and not os.path.lexists(link):
                    os.makedirs(os.path.dirname(link), exist_ok=True)
                    os.symlink(compiled, link)
            except OSError:
                pass  # another child linked it first, or the folder is not writable: Python compiles it
    try:
        os.makedirs(os.path.dirname(stamp), exist_ok=True)
        open(stamp, "w").close()
    except OSError:
        pass


# Set (by ``main``) when the user switched bytecode off and the parent gave this child a bytecode
# folder of its own: the folders whose sources' bytecode may be cached there (the environment's
# and the interpreter's). Bytecode of any other source (the project, its tests) is neither read
# nor written, as the user asked: a timestamp-checked .pyc cannot tell a file edited within the
# same second at the same size, and would run the old code.
_CACHED_ONLY_UNDER = ()


def _fresh_source(path):
    return bool(_CACHED_ONLY_UNDER) and not os.path.abspath(path).startswith(_CACHED_ONLY_UNDER)


def _load_bytecode_safely():
    """Make every module imported from here on survive a damaged bytecode file, and never write one.

    importlib writes bytecode without checking that the write was complete
    (a full disk leaves a truncated file under its final name), and then
    fails to import that module ("marshal data too short") on every later
    run. The loader installed here, for source files found on ``sys.path``,
    compiles the source when the bytecode file does not load, and writes a
    bytecode file completely, under a temporary name then renamed, or not at
    all. It costs nothing while the bytecode is sound: the usual path runs.
    """
    from importlib import machinery

    class SafeSourceFileLoader(machinery.SourceFileLoader):
        _skip_bytecode = False

        def get_code(self, fullname):
            try:
                return super().get_code(fullname)
            except (EOFError, ValueError, TypeError):
                # the bytecode file is there, current, and damaged: compile the source instead
                # (and write sound bytecode over it); a source that is itself bad raises again
                self._skip_bytecode = True
                try:
                    return super().get_code(fullname)
                finally:
                    self._skip_bytecode = False

        def get_data(self, path):
            if not path.endswith(tuple(machinery.SOURCE_SUFFIXES)):
                if self._skip_bytecode:
                    raise OSError("damaged bytecode, not read again")
                if _fresh_source(self.path):
                    raise OSError("bytecode of a source outside the environment: not used")
            return super().get_data(path)

        def set_data(self, path, data, *, _mode=0o666):
            if _fresh_source(self.path):
                return
            temporary = f"{path}.{os.getpid()}.tmp"
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _mode & 0o666)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                finally:
                    os.close(fd)
                os.replace(temporary, path)
            except OSError:
                try:
                    os.unlink(temporary)
                except OSError:
                    pass  # never created

    loaders = [
        (machinery.ExtensionFileLoader, machinery.EXTENSION_SUFFIXES),
        (SafeSourceFileLoader, machinery.SOURCE_SUFFIXES),
        (machinery.SourcelessFileLoader, machinery.BYTECODE_SUFFIXES),
    ]
    hook = machinery.FileFinder.path_hook(*loaders)
    for index, existing in enumerate(sys.path_hooks):
        if getattr(existing, "__qualname__", "").startswith("FileFinder.path_hook"):
            sys.path_hooks[index] = hook
            sys.path_importer_cache.clear()
            return


if __name__ == "__main__":
    if sys.argv[1:3] == ["--supervise", "--"]:  # an installer, run for the parent: ``_child.py --supervise -- CMD...``
        _supervise(lambda: _exec(sys.argv[3:]))  # does not return: execs, or exits as the command did
    # sys.path[0] is this file's folder, the plugin package: the tests must not import from it
    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _here:
        del sys.path[0]
    _supervise(lambda: None)  # from here on this is the runner, under its supervisor
    _load_bytecode_safely()
    _share_stdlib_bytecode()  # before the imports below, which are its first users

import io  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import struct  # noqa: E402
import warnings  # noqa: E402

import pytest  # noqa: E402

EVENT_HEADER = struct.Struct("<I")  # an event's length in bytes, before the event
EVENT_PROTOCOL = 4

_MARKER_HELP = "envmatrix(**axes, deps=[], python=[], exclude=[]): run this test in each combination of the axes."


class _PlainPickler(pickle.Pickler):
    # the C pickler handles None, bool and exact int, float, str, bytes, dict, list and tuple
    # itself; everything else comes here
    def reducer_override(self, obj):
        raise pickle.PicklingError(f"{type(obj).__name__} is not plain data")


def encode_event(event):
    """One event as written to the event file: its length, then its pickle."""
    buffer = io.BytesIO()
    try:
        _PlainPickler(buffer, EVENT_PROTOCOL).dump(event)
        data = buffer.getvalue()
    except pickle.PicklingError:
        # a test's user_properties, say, may hold any object: send it as the text
        # junitxml would show for it
        data = pickle.dumps(_plain(event), EVENT_PROTOCOL)
    return EVENT_HEADER.pack(len(data)) + data


def _plain(value):
    if value is None or type(value) in (bool, int, float, str, bytes):
        return value
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    for base in (int, float, str, bytes):
        if isinstance(value, base):  # a subclass, such as numpy.float64
            return base(value)
    return str(value)


def _keywords(item):
    """The names ``-k`` matches for ``item``, as pytest's keyword matcher gathers them."""
    names = {node.name for node in item.listchain() if not isinstance(node, pytest.Session)}
    names.update(item.listextrakeywords())
    function = getattr(item, "function", None)
    if function is not None:
        names.update(function.__dict__)
    names.update(mark.name for mark in item.iter_markers())
    return names


def _plain_kwargs(kwargs):
    """A marker's keyword arguments, when they are plain values ``-m`` can match; else none."""
    if all(isinstance(value, (str, int, float, bool, type(None))) for value in kwargs.values()):
        return dict(kwargs)
    return {}


def _closest_first(item):
    """The envmatrix markers from the function outwards (a class's own before its bases')."""
    marks, current, group = [], None, []
    for node, mark in item.iter_markers_with_node("envmatrix"):
        if node is not current:
            marks.extend(reversed(group) if isinstance(current, pytest.Class) else group)
            current, group = node, []
        group.append(mark)
    marks.extend(reversed(group) if isinstance(current, pytest.Class) else group)
    return marks


def plain_marks(item):
    """A test's envmatrix markers, closest first, as plain ``[args, kwargs]`` pairs."""
    return [[_plain(list(mark.args)), _plain(dict(mark.kwargs))] for mark in _closest_first(item)]


def marks_text(marks):
    """``plain_marks`` as text: the parent's record (recorded.py) and a child's collection compare so."""
    try:
        return json.dumps(marks, sort_keys=True)
    except (TypeError, ValueError):
        return repr(marks)  # never what the parent recorded: the parent records plain data only


def _stale_modules(items, recorded):
    """The modules the parent made from its record that collect otherwise here: module → what differs.

    ``recorded``: module → what the parent's record says of it (``ModuleRecord.check``).
    """
    found = {}
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if module in recorded:
            found.setdefault(module, []).append(item)
    stale = {}
    for module, check in recorded.items():
        if module not in found:
            continue  # not collected here (an import error, a skip): the parent hears of that as such
        definitions, ids = {}, set()
        for item in found[module]:
            original = getattr(item, "originalname", None)
            definitions.setdefault(f"{item.parent.nodeid}::{original}" if original else item.nodeid, item)
            callspec = getattr(item, "callspec", None)
            if callspec is not None and "envmatrix_combination" in callspec.params:
                ids.add(item.nodeid)
        problems = []
        added = sorted(set(definitions) - set(check["marks"]))
        gone = sorted(set(check["marks"]) - set(definitions))
        changed = sorted(d for d in definitions if d in check["marks"] and marks_text(plain_marks(definitions[d])) != check["marks"][d])
        if added:
            problems.append("tests it did not have: " + _some(added))
        if gone:
            problems.append("tests it no longer has: " + _some(gone))
        if changed:
            problems.append("other envmatrix markers on " + _some(changed))
        if not (added or gone or changed) and ids != set(check["ids"]):
            problems.append("other node ids: " + _some(sorted(ids ^ set(check["ids"]))))
        if problems:
            stale[module] = "; ".join(problems)
    return stale


def _some(names):
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


class _RecordCheck:
    """Compares the modules made from records with this collection before any other plugin changes it.

    The parent recorded every item collection made, before its plugins and
    conftest.py files selected among them; a plugin here that drops items
    would otherwise look like a module that lost tests.
    """

    def __init__(self, child):
        self.child = child

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items):
        child = self.child
        child.stale = _stale_modules(items, child.recorded) if child.recorded else {}
        if child.stale:
            child._send("stale", modules=child.stale)


class ChildPlugin:
    def __init__(self, plan):
        collect_as = plan.get("collect_as", {})
        self.wanted = {collect_as.get(nodeid, nodeid) for nodeid in plan.get("nodeids", ())}
        self.reported_as = {collected: nodeid for nodeid, collected in collect_as.items()}
        self.combinations = plan.get("combinations", {})
        self.events = open(plan["events"], "ab")
        self.config = None
        self.pid = os.getpid()
        self.requirements = plan.get("requirements", [])
        self.ini_names = plan.get("ini_names", [])
        # a whole combination: every test function of the paths runs in it (the suite-wide matrix)
        self.suite = plan.get("suite")
        self.selection_fd = plan.get("selection_fd")
        # modules the parent made from its record of the last run, and what to compare (see recorded.py)
        self.recorded = plan.get("recorded", {})
        self.stale = {}  # those that collect otherwise here: module → what differs
        self.record_check = _RecordCheck(self)
        self.collect_warnings = None  # a suite child's collection warnings, not yet sent

    def _send(self, event, **data):
        if os.getpid() != self.pid:
            # a test forked, and the copy went on running the session: the parent must
            # know that these events are not this pytest's
            data["forked"] = os.getpid()
        self.events.write(encode_event({"event": event, **data}))
        self.events.flush()

    def _serialize(self, report):
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        reported = self.reported_as.get(data.get("nodeid"))
        if reported is not None:
            # the parent's id and headline: ``TestX.test_x[numpy-2.1.3]``, like a parametrized function's
            suffix = reported[len(data["nodeid"]):]
            data["nodeid"] = reported
            location = data.get("location")
            if location and location[2] is not None:
                data["location"] = (location[0], location[1], location[2] + suffix)
        return data

    def pytest_addoption(self, parser):
        """The parent's ini options: read by the parent only, but declared here, so that a project's
        ``--strict-config`` (or ``filterwarnings = error``) accepts them in the child too."""
        for name in self.ini_names:
            parser.addini(name, "pytest-envmatrix: read by the parent pytest")

    def pytest_configure(self, config):
        self.config = config
        config.addinivalue_line("markers", _MARKER_HELP)
        problems = _unmet(self.requirements)
        if problems:
            self._send("foreign", problems=problems)
            raise pytest.UsageError(
                "envmatrix: this environment does not hold the combination it was built for:\n  " + "\n  ".join(problems)
            )

    @pytest.fixture
    def envmatrix_combination(self, request):
        """The combination this item runs in (axis name → value)."""
        return getattr(request, "param", None)

    @pytest.hookimpl(tryfirst=True)
    def pytest_generate_tests(self, metafunc):
        """The parent's parametrization, so node ids are the parent's.

        The parent makes the fixture autouse, so every function may be
        parametrized with it. Here the name is only added to the function's
        fixture names for ``parametrize`` to accept it: pytest then drops it
        from the closure of tests that do not ask for it (directly or through
        another fixture), which spares them a fixture setup per test (a third
        of a millisecond, as much as a trivial test costs in all).
        """
        combination = self.suite or self.combinations.get(metafunc.definition.nodeid)
        if combination is not None:
            if "envmatrix_combination" not in metafunc.fixturenames:
                metafunc.fixturenames.append("envmatrix_combination")
            metafunc.parametrize("envmatrix_combination", [combination["values"]], ids=[combination["id"]])

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        if self.suite is not None:
            self._describe(items)
            self.wanted = {self.collected_as.get(nodeid, nodeid) for nodeid in self._selection()}
        stale = self.stale
        keep = [item for item in items if item.nodeid in self.wanted and item.nodeid.split("::", 1)[0] not in stale]
        drop = [item for item in items if item.nodeid not in self.wanted or item.nodeid.split("::", 1)[0] in stale]
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep

    def _describe(self, items):
        """Tell the parent what this combination collected, for it to make its items of.

        A function was parametrized with the combination, so its node id is
        the parent's already; any other item (a unittest method, a doctest)
        gets the combination's id appended, and is reported under that id.
        """
        described = []
        self.collected_as = {}
        suffix = "[" + self.suite["id"] + "]"
        for item in items:
            callspec = getattr(item, "callspec", None)
            ours = callspec is not None and "envmatrix_combination" in callspec.params
            nodeid = item.nodeid if ours else item.nodeid + suffix
            if not ours:
                self.reported_as[item.nodeid] = nodeid
                self.collected_as[nodeid] = item.nodeid
            path, lineno, domain = item.location
            described.append(
                {
                    "nodeid": nodeid,
                    "definition": f"{item.parent.nodeid}::{item.originalname}" if ours else None,
                    "collect_as": None if ours else item.nodeid,
                    "location": [path, lineno, domain if ours else domain + suffix],
                    "keywords": sorted(_keywords(item)),
                    "markers": [[mark.name, _plain_kwargs(mark.kwargs)] for mark in item.iter_markers() if mark.name != "parametrize"],
                    "envmatrix": plain_marks(item),
                }
            )
        self._send_collect_warnings()  # before the items: the parent shows them as its collection's
        self._send("items", items=described)

    def _selection(self):
        """The parent's choice among the described items; it writes it once it has applied -k, -m, --lf."""
        if self.selection_fd is None:
            return []
        with os.fdopen(self.selection_fd, "rb") as pipe:
            data = pipe.read()
        try:
            return json.loads(data.decode("utf-8")) if data else []
        except ValueError:
            return []

    def pytest_collection_finish(self, session):
        self._send("collected", nodeids=[self.reported_as.get(item.nodeid, item.nodeid) for item in session.items])

    def pytest_collectreport(self, report):
        if report.failed or report.skipped:
            self._send("collectreport", report=self._serialize(report))

    def pytest_runtest_logstart(self, nodeid, location):
        self._send("logstart", nodeid=self.reported_as.get(nodeid, nodeid))

    def pytest_runtest_logreport(self, report):
        self._send("logreport", report=self._serialize(report))

    def pytest_runtest_logfinish(self, nodeid, location):
        self._send("logfinish", nodeid=self.reported_as.get(nodeid, nodeid))

    def pytest_warning_recorded(self, warning_message, when, nodeid, location):
        if when == "runtest":
            self._send_warning(warning_message)
        elif when == "collect" and self.recorded:
            # modules the parent made from their records: it did not import them, nor see these
            self._send_warning(warning_message, when="collect")
        # the rest: configuration warnings, the parent's own; a suite child's collection ones (see below)

    def _send_warning(self, warning_message, when="runtest"):
        category = warning_message.category
        self._send(
            "warning",
            when=when,
            message=str(warning_message.message),
            category=category.__name__,
            category_module=category.__module__,
            filename=str(warning_message.filename),
            lineno=warning_message.lineno,
        )

    @pytest.hookimpl(hookwrapper=True)  # the old style: any pluggy an environment holds knows it
    def pytest_collection(self, session):
        """A suite child's collection warnings, caught for the parent, which collects none of these modules.

        pytest shows collection warnings when collection ends, and this child's
        ends only after the parent has chosen among the items it described: the
        warnings are caught here, inside pytest's own catching (so under the
        same filters), and sent with the description (see ``_describe``).
        """
        if self.suite is None:
            yield
            return
        with warnings.catch_warnings(record=True) as self.collect_warnings:
            yield

    def _send_collect_warnings(self):
        for warning_message in self.collect_warnings or ():
            self._send_warning(warning_message, when="collect")
        if self.collect_warnings:
            del self.collect_warnings[:]

    def pytest_sessionfinish(self, exitstatus):
        self._send("sessionfinish", exitstatus=int(exitstatus))
        self.events.close()


def _unmet(requirements):
    """The requirements that this interpreter does not meet from inside its own environment.

    The installer put the combination into the environment, but Python finds
    a distribution on ``sys.path`` in order: a ``PYTHONPATH`` naming another
    environment's site-packages (as HPC module systems set it), or a path
    added by a ``.pth`` file, would put another version first, and the run
    would report on a combination that never ran. The parent parsed the
    requirements; packaging is imported here only for what a plain string
    comparison cannot decide.
    """
    from importlib import metadata

    prefix = os.path.realpath(sys.prefix)
    pythonpath = {os.path.realpath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    problems = []
    for requirement in requirements:
        name = requirement["name"]
        if requirement["marker"]:
            from packaging.markers import Marker

            if not Marker(requirement["marker"]).evaluate():
                continue
        dist = _distribution(metadata, name)
        if dist is None:
            problems.append(f"{name} is not installed")
            continue
        location = os.path.realpath(str(dist.locate_file("")))
        if os.path.commonpath([location, prefix]) != prefix:
            where = " (a PYTHONPATH entry)" if location in pythonpath else ""
            problems.append(f"{name} {dist.version} is found first in {location}{where}, outside the environment {prefix}")
        elif requirement["url"] or not requirement["specifier"] or dist.version == requirement["exact"]:
            continue
        else:
            from packaging.specifiers import SpecifierSet

            if not SpecifierSet(requirement["specifier"]).contains(dist.version, prereleases=True):
                problems.append(f"{name} {dist.version} is installed, which does not satisfy {requirement['text']}")
    return problems


def _distribution(metadata, name):
    # Python 3.9 matches a dist-info folder by the name lowercased with "-" made "_" only,
    # while new installers write every run of "-", "_" and "." as "_"
    import re

    for candidate in dict.fromkeys([name, re.sub(r"[-_.]+", "_", name).lower()]):
        try:
            return metadata.distribution(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


def _bytecode_only_for_the_environment():
    """Cache bytecode only for the environment's and the interpreter's sources (see ``_CACHED_ONLY_UNDER``).

    Ordinary imports go through the loader of ``_load_bytecode_safely``;
    pytest's rewritten test modules and ``conftest.py`` files through its own
    cache, whose reader is told here that a source outside those folders has
    no bytecode.
    """
    global _CACHED_ONLY_UNDER
    roots = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    _CACHED_ONLY_UNDER = tuple(os.path.join(os.path.abspath(root), "") for root in roots)
    from _pytest.assertion import rewrite

    read = getattr(rewrite, "_read_pyc", None)
    if read is not None:

        def _read_pyc(source, *args, **kwargs):
            return None if _fresh_source(str(source)) else read(source, *args, **kwargs)

        rewrite._read_pyc = _read_pyc


def main(argv):
    with open(argv[0], encoding="utf-8") as f:
        plan = json.load(f)
    if plan.get("fresh_bytecode"):
        _bytecode_only_for_the_environment()
    if plan.get("cwd_on_sys_path"):
        sys.path.insert(0, os.getcwd())
    child = ChildPlugin(plan)
    return pytest.main(plan["args"], plugins=[child, child.record_check])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
