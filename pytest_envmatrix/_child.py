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


if __name__ == "__main__":
    # sys.path[0] is this file's folder, the plugin package: the tests must not import from it
    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _here:
        del sys.path[0]
    _share_stdlib_bytecode()  # before the imports below, which are its first users

import io  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import struct  # noqa: E402

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


class ChildPlugin:
    def __init__(self, plan):
        collect_as = plan.get("collect_as", {})
        self.wanted = {collect_as.get(nodeid, nodeid) for nodeid in plan["nodeids"]}
        self.reported_as = {collected: nodeid for nodeid, collected in collect_as.items()}
        self.combinations = plan["combinations"]
        self.events = open(plan["events"], "ab")
        self.config = None

    def _send(self, event, **data):
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

    def pytest_configure(self, config):
        self.config = config
        config.addinivalue_line("markers", _MARKER_HELP)

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
        combination = self.combinations.get(metafunc.definition.nodeid)
        if combination is not None:
            if "envmatrix_combination" not in metafunc.fixturenames:
                metafunc.fixturenames.append("envmatrix_combination")
            metafunc.parametrize("envmatrix_combination", [combination["values"]], ids=[combination["id"]])

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        keep = [item for item in items if item.nodeid in self.wanted]
        drop = [item for item in items if item.nodeid not in self.wanted]
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep

    def pytest_collection_finish(self, session):
        self._send("collected", nodeids=[self.reported_as.get(item.nodeid, item.nodeid) for item in session.items])

    def pytest_collectreport(self, report):
        if report.failed:
            self._send("collectreport", report=self._serialize(report))

    def pytest_runtest_logstart(self, nodeid, location):
        self._send("logstart", nodeid=self.reported_as.get(nodeid, nodeid))

    def pytest_runtest_logreport(self, report):
        self._send("logreport", report=self._serialize(report))

    def pytest_warning_recorded(self, warning_message, when, nodeid, location):
        if when != "runtest":
            return  # collection and configuration warnings are the parent's own, already shown
        category = warning_message.category
        self._send(
            "warning",
            message=str(warning_message.message),
            category=category.__name__,
            category_module=category.__module__,
            filename=str(warning_message.filename),
            lineno=warning_message.lineno,
        )

    def pytest_sessionfinish(self, exitstatus):
        self._send("sessionfinish", exitstatus=int(exitstatus))
        self.events.close()


def _end_with_parent():
    """End this child, and whatever it started, soon after the parent pytest dies.

    The child leads a process group of its own, so that a terminal's Ctrl-C
    reaches only the parent, which then ends it. The other side of that: a
    parent killed outright (SIGKILL, the out-of-memory killer, a CI runner
    giving up) cannot end it, and a hanging test would run on unseen. When
    the parent dies the child is handed to another process; a thread
    watches for that.
    """
    if not hasattr(os, "killpg"):
        return
    import signal
    import threading
    import time

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, name="envmatrix-parent-watch", daemon=True).start()


def main(argv):
    _end_with_parent()
    with open(argv[0], encoding="utf-8") as f:
        plan = json.load(f)
    if plan.get("cwd_on_sys_path"):
        sys.path.insert(0, os.getcwd())
    return pytest.main(plan["args"], plugins=[ChildPlugin(plan)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
