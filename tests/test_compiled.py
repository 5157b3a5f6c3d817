"""A project with compiled code: each environment compiles it against its own packages.

``emx-headers`` is a made-up numpy: each version ships a C header whose
``EMX_ABI`` is its major version, found through ``get_include()``. The
project ``emx-ext`` includes that header in a C extension (built by
setuptools), so the value the extension reports is the version of the header
it was compiled against.
"""

import json
import os
import subprocess
import sys
import sysconfig
from fnmatch import fnmatch
from pathlib import Path

import pytest
from filelock import FileLock

from conftest import _wheelhouse_dir, build_wheel

from pytest_envmatrix.compiled import build_requirements, compiled_by, source_tree_shadowing

HEADER_VERSIONS = ("1.0", "2.0")


@pytest.fixture(scope="session")
def header_wheels(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("header-wheels")
    for version in HEADER_VERSIONS:
        major = version.split(".")[0]
        build_wheel(
            dest,
            "emx-headers",
            version,
            {
                "emx_headers/__init__.py": (
                    f"import os\n__version__ = {version!r}\n\n"
                    "def get_include():\n    return os.path.join(os.path.dirname(__file__), 'include')\n"
                ),
                "emx_headers/include/emx_abi.h": f"#define EMX_ABI {major}\n",
            },
        )
    return dest


@pytest.fixture(scope="session")
def setuptools_wheels(request) -> Path:
    """setuptools and wheel as local wheels: building the project needs them inside each environment."""
    dest = _wheelhouse_dir(request.config).parent / "envmatrix-setuptools-wheels"
    dest.mkdir(parents=True, exist_ok=True)
    stamp = dest / "complete-v1.json"
    with FileLock(str(dest) + ".lock"):
        if not stamp.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                 "--only-binary=:all:", "--dest", str(dest), "setuptools>=64", "wheel"],
                check=True,
                timeout=600,
            )
            stamp.write_text(json.dumps(sorted(p.name for p in dest.glob("*.whl"))))
    return dest


PYPROJECT = """
[build-system]
requires = ["setuptools>=64", "emx-headers>=2"]
build-backend = "setuptools.build_meta"

[project]
name = "emx-ext"
version = "0.1"
dependencies = ["emx-headers"]
"""

SETUP_PY = """
import emx_headers
from setuptools import Extension, setup

setup(ext_modules=[Extension("emx_ext._abi", ["src/emx_ext/_abi.c"], include_dirs=[emx_headers.get_include()])])
"""

EXTENSION_C = """
#include <Python.h>
#include "emx_abi.h"

static PyObject *doubled(PyObject *self, PyObject *arg) {
    long value = PyLong_AsLong(arg);
    if (value == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLong(%(factor)s * value);
}

static PyMethodDef methods[] = {{"doubled", doubled, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_abi", NULL, -1, methods};

PyMODINIT_FUNC PyInit__abi(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL) PyModule_AddIntConstant(m, "ABI", EMX_ABI);
    return m;
}
"""

TEST_ABI = """
import os
import pytest

@pytest.mark.envmatrix(emx_headers={versions!r})
def test_abi(envmatrix_combination):
    import emx_ext._abi as abi
    import emx_headers
    print("extension", abi.__file__, "ABI", abi.ABI)
    assert emx_headers.__version__ == envmatrix_combination["emx_headers"]
    assert abi.ABI == int(envmatrix_combination["emx_headers"].split(".")[0])
    assert abi.doubled(21) == 42
"""


@pytest.fixture
def compiled_project(pytester, monkeypatch, tmp_path):
    # pytester makes the project HOME; the tools' caches and settings go elsewhere, the tree holds the project only
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    pytester.makefile(".toml", pyproject=PYPROJECT)
    (pytester.path / "setup.py").write_text(SETUP_PY)
    package = pytester.path / "src" / "emx_ext"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "_abi.c").write_text(EXTENSION_C % {"factor": 2})
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_abi.py").write_text(TEST_ABI.format(versions=list(HEADER_VERSIONS)))
    return pytester


@pytest.fixture
def compiled_matrix(fresh_matrix, header_wheels, setuptools_wheels):
    fresh_matrix.wheel_dirs = [*fresh_matrix.wheel_dirs, header_wheels, setuptools_wheels]
    return fresh_matrix


def _tree(root: Path) -> set[str]:
    """The project's files, less what pytest and its plugins write beside them (``.pytest_cache``,
    pytest-benchmark's ``.benchmarks``): a build's output (``build/``, ``*.egg-info``, ``*.so``) shows."""
    return {
        p.relative_to(root).as_posix() for p in root.rglob("*")
        if "__pycache__" not in p.relative_to(root).parts and not p.relative_to(root).parts[0].startswith(".")
    }


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_each_environment_compiles_the_project_against_its_own_headers(compiled_matrix, compiled_project, installer):
    """The build-system's ``emx-headers>=2`` gives way to the combination's pin: 1.0's header is compiled in too."""
    before = _tree(compiled_project.path)
    result = compiled_matrix.run("-v", "-rP", f"--envmatrix-installer={installer}", "--envmatrix-jobs=2")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "envmatrix: the project is built in each environment, against its packages "
        "(setuptools with extension modules (declared in setup.py))",
    ])
    result.stdout.fnmatch_lines_random(["*extension */site-packages/emx_ext/_abi*.so ABI 1", "*extension */site-packages/emx_ext/_abi*.so ABI 2"])
    # no build output in the source tree: no build/, no egg-info, no extension module
    assert _tree(compiled_project.path) == before
    marks = compiled_matrix.envs().values()
    assert [m["project_build"] for m in marks] == ["compiled", "compiled"]
    for env in compiled_matrix.envs():
        assert not (compiled_matrix.cache / "envs" / env / "envmatrix-project").exists()


def test_a_source_edit_rebuilds_the_project_and_a_test_edit_does_not(compiled_matrix, compiled_project):
    compiled_matrix.run().assert_outcomes(passed=2)

    # editing a test reuses the environments
    test_file = compiled_project.path / "tests" / "test_abi.py"
    test_file.write_text(test_file.read_text() + "\n\ndef test_more():\n    pass\n")
    result = compiled_matrix.run()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*0 built*, 2 reused*"])

    # editing the C source builds each environment's extension again, from the new source
    (compiled_project.path / "src" / "emx_ext" / "_abi.c").write_text(EXTENSION_C % {"factor": 3})
    result = compiled_matrix.run("-rf")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*assert 63 == 42*", "*2 built*, 0 reused*"])


def _fake_tool(folder: Path, name: str, message: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 97\n")
    tool.chmod(0o755)


@pytest.mark.skipif(sys.platform == "win32", reason="fake tools are shell scripts")
def test_the_outer_environments_tools_are_not_used(compiled_matrix, compiled_project, monkeypatch, tmp_path):
    """A compiler in the activated virtualenv's bin, first on PATH, is not what the build runs,
    and neither it nor the running virtualenv's scripts are on the child's PATH; the rest of PATH is."""
    outer = tmp_path / "outer-venv"
    (outer / "pyvenv.cfg").parent.mkdir()
    (outer / "pyvenv.cfg").write_text("home = /nowhere\n")
    compiler = sysconfig.get_config_var("CC").split()[0]
    for name in {compiler, "cc", "gcc", "emx-outer-tool"}:
        _fake_tool(outer / "bin", name, "the outer environment's tool ran")
    _fake_tool(tmp_path / "elsewhere", "emx-other-tool", "another tool")
    running = sysconfig.get_path("scripts")
    monkeypatch.setenv("VIRTUAL_ENV", str(outer))
    monkeypatch.setenv("PATH", os.pathsep.join([str(outer / "bin"), running, str(tmp_path / "elsewhere"), os.environ["PATH"]]))
    (compiled_project.path / "tests" / "test_path.py").write_text(
        "import os, shutil, sys\n"
        "import pytest\n\n"
        "@pytest.mark.envmatrix(emx_headers=['2.0'])\n"
        "def test_path():\n"
        "    entries = [os.path.realpath(e) for e in os.environ['PATH'].split(os.pathsep)]\n"
        "    assert shutil.which('emx-outer-tool') is None\n"
        f"    assert os.path.realpath({running!r}) not in entries\n"
        "    assert shutil.which('emx-other-tool')\n"
        "    assert entries[0] == os.path.realpath(os.path.dirname(sys.executable))\n"
    )
    result = compiled_matrix.run("-v")
    result.assert_outcomes(passed=3)
    assert "the outer environment's tool ran" not in result.stdout.str()


def test_editable_on_request_shares_one_build_and_its_extension_lands_in_the_source_tree(compiled_matrix, compiled_project):
    """What ``envmatrix_project_build = editable`` gives a compiled project, and why it is not the default:
    one isolated build (with the build-system's ``emx-headers>=2``) for every combination."""
    compiled_project.makeini("[pytest]\nenvmatrix_project_build = editable\n")
    result = compiled_matrix.run("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines_random(["*test_abi[[]emx_headers-1.0[]] FAILED*", "*test_abi[[]emx_headers-2.0[]] PASSED*"])
    assert list((compiled_project.path / "src" / "emx_ext").glob("_abi*.so"))


def test_a_pure_project_can_be_built_in_each_environment_on_request(compiled_matrix, pytester):
    pytester.makefile(".toml", pyproject=(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "emx-pure"\nversion = "0.1"\n'
    ))
    pytester.makeini("[pytest]\nenvmatrix_project_build = compiled\n")
    (pytester.path / "src" / "emx_pure").mkdir(parents=True)
    (pytester.path / "src" / "emx_pure" / "__init__.py").write_text("")
    pytester.makepyfile(
        test_where="""
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_installed_copy():
            import emx_pure
            assert "site-packages" in emx_pure.__file__
        """
    )
    result = compiled_matrix.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*built in each environment*(envmatrix_project_build = compiled)"])


def test_a_bad_project_build_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\nenvmatrix_project_build = fast\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option envmatrix_project_build: 'fast' is not one of auto, editable, compiled"])

MESON_PYPROJECT = """
[build-system]
requires = ["meson-python>=0.15", "numpy>=2.0"]
build-backend = "mesonpy"

[project]
name = "emx-np"
version = "0.1"
dependencies = ["numpy"]
"""

MESON_BUILD = """
project('emx-np', 'c')
py = import('python').find_installation(pure: false)
numpy_include = run_command(py, ['-c', 'import numpy; print(numpy.get_include())'], check: true).stdout().strip()
py.extension_module('_np', 'src/emx_np/_np.c', include_directories: include_directories(numpy_include), install: true, subdir: 'emx_np')
py.install_sources('src/emx_np/__init__.py', subdir: 'emx_np')
"""

NUMPY_EXTENSION_C = """#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

static PyObject *abi_major(PyObject *self, PyObject *unused) {
    return PyLong_FromLong((long)(NPY_ABI_VERSION >> 24));
}

static PyObject *doubled_sum(PyObject *self, PyObject *arg) {
    PyArrayObject *array = (PyArrayObject *)PyArray_FROMANY(arg, NPY_DOUBLE, 1, 1, NPY_ARRAY_IN_ARRAY);
    if (array == NULL) return NULL;
    double total = 0;
    const double *data = (const double *)PyArray_DATA(array);
    for (npy_intp i = 0; i < PyArray_SIZE(array); i++) total += 2 * data[i];
    Py_DECREF(array);
    return PyFloat_FromDouble(total);
}

static PyMethodDef methods[] = {
    {"abi_major", abi_major, METH_NOARGS, NULL},
    {"doubled_sum", doubled_sum, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_np", NULL, -1, methods};

PyMODINIT_FUNC PyInit__np(void) {
    import_array();
    return PyModule_Create(&module);
}
"""

NUMPY_TEST = """import pytest

@pytest.mark.envmatrix(numpy=["1.26.4", "2.1.3"])
def test_compiled_against_this_numpy(envmatrix_combination):
    import numpy
    from emx_np import _np
    assert numpy.__version__ == envmatrix_combination["numpy"]
    assert _np.abi_major() == int(numpy.__version__.split(".")[0])
    assert _np.doubled_sum(numpy.arange(4.0)) == 12.0
"""


@pytest.mark.network
@pytest.mark.skipif(not (3, 10) <= sys.version_info[:2] <= (3, 12), reason="numpy 1.26.4 and 2.1.3 both have wheels for Python 3.10 to 3.12")
def test_meson_python_project_compiled_against_each_numpy(tmp_path):
    """Real numpy and meson-python: the build-system's ``numpy>=2.0`` gives way to the pin, and a module
    compiled against numpy 2's headers would report ABI 2 under numpy 1.26.4."""
    project = tmp_path / "project"
    (project / "src" / "emx_np").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "pyproject.toml").write_text(MESON_PYPROJECT)
    (project / "meson.build").write_text(MESON_BUILD)
    (project / "src" / "emx_np" / "__init__.py").write_text("")
    (project / "src" / "emx_np" / "_np.c").write_text(NUMPY_EXTENSION_C)
    (project / "tests" / "test_np.py").write_text(NUMPY_TEST)
    before = _tree(project)
    command = [
        sys.executable, "-m", "pytest", "--envmatrix", f"--envmatrix-cache-dir={tmp_path / 'envcache'}", "-v",
        "-p", "no:randomly", "-p", "no:cacheprovider",
    ]
    run = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "test_compiled_against_this_numpy[numpy-1.26.4] PASSED" in run.stdout
    assert "test_compiled_against_this_numpy[numpy-2.1.3] PASSED" in run.stdout
    assert _tree(project) == before


def test_a_flat_layout_imports_the_source_tree_when_the_rootdir_is_on_sys_path(compiled_matrix, compiled_project):
    """The trap the docs describe: the tree has no compiled module, so importing the package from it fails."""
    compiled_project.path.joinpath("src", "emx_ext").rename(compiled_project.path / "emx_ext")
    (compiled_project.path / "setup.py").write_text(SETUP_PY.replace("src/emx_ext/_abi.c", "emx_ext/_abi.c"))
    result = compiled_matrix.run()
    result.assert_outcomes(passed=2)  # plain pytest, no top-level conftest: the installed package
    result.stdout.no_fnmatch_line("*WARNING*")

    (compiled_project.path / "conftest.py").write_text("")  # prepend mode puts the rootdir on sys.path
    result = compiled_matrix.run()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        f"envmatrix: WARNING: the package emx_ext is at the top of {compiled_project.path}, and pytest puts the folder "
        "of its conftest.py on sys.path (--import-mode=prepend): the tests will import it from the source tree, *",
        "*ModuleNotFoundError: No module named 'emx_ext._abi'*",
    ])


@pytest.mark.parametrize(
    "layout, cwd_on_sys_path, import_mode, pythonpath, expected",
    [
        ({"pkg/__init__.py"}, True, "prepend", False, "the package pkg is at the top of *, and python -m pytest puts the current directory on sys.path"),
        ({"pkg/__init__.py"}, False, "prepend", True, "*, and the ini option pythonpath puts it on sys.path"),
        ({"pkg/__init__.py", "pkg/tests/__init__.py", "pkg/tests/test_x.py"}, False, "prepend", False,
         "*, and its test folder pkg/tests is a package: pytest puts the top of the package on sys.path (--import-mode=prepend)"),
        ({"pkg/__init__.py", "pkg/tests/__init__.py", "pkg/tests/test_x.py"}, False, "importlib", False, None),
        ({"pkg/__init__.py", "pkg/tests/test_x.py"}, False, "prepend", False, None),
        ({"src/pkg/__init__.py", "conftest.py"}, True, "prepend", True, None),
        ({"tests/__init__.py", "tests/test_x.py"}, True, "prepend", False, None),
    ],
)
def test_which_runs_import_a_flat_layout_from_the_source_tree(tmp_path, layout, cwd_on_sys_path, import_mode, pythonpath, expected):
    for name in layout:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    found = source_tree_shadowing(tmp_path, tmp_path, cwd_on_sys_path, import_mode, [tmp_path] if pythonpath else [])
    assert found == expected if expected is None else fnmatch(found or "", expected)


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"pyproject.toml": '[build-system]\nrequires = ["meson-python"]\nbuild-backend = "mesonpy"\n'}, "build backend meson-python"),
        ({"pyproject.toml": '[build-system]\nbuild-backend = "scikit_build_core.build"\n'}, "build backend scikit-build-core"),
        ({"pyproject.toml": PYPROJECT, "setup.py": SETUP_PY}, "setuptools with extension modules (declared in setup.py)"),
        ({"setup.py": "from setuptools import setup\nfrom Cython.Build import cythonize\nsetup(ext_modules=cythonize('x.pyx'))\n"},
         "setuptools with extension modules (declared in setup.py)"),
        ({"pyproject.toml": '[build-system]\nbuild-backend = "setuptools.build_meta"\n[tool.setuptools]\next-modules = []\n'},
         "setuptools with extension modules (declared in pyproject.toml)"),
        ({"pyproject.toml": '[build-system]\nbuild-backend = "setuptools.build_meta"\n[project]\nname = "x"\n'}, None),
        ({"pyproject.toml": '[build-system]\nrequires = ["flit_core"]\nbuild-backend = "flit_core.buildapi"\n'}, None),
        ({"pyproject.toml": '[build-system]\nbuild-backend = "hatchling.build"\n# ext_modules in a comment of a hatch project\n'}, None),
        ({"pyproject.toml": "not toml ["}, None),
    ],
)
def test_which_projects_count_as_compiled(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert compiled_by(tmp_path) == expected


def test_the_environments_requirements_win_over_the_build_systems():
    requires = ["setuptools>=64", "numpy>=2.0", "Cython>=3; python_version >= '3.9'", "meson-python"]
    pins = ("numpy==1.26.4", "cython==0.29.37", "pytest==9.2.0")
    assert build_requirements(requires, pins) == ["setuptools>=64", "meson-python"]


def test_what_tests_and_tools_write_into_the_tree_does_not_rebuild(tmp_path):
    """A hypothesis database, a coverage file, pytest's cache or bytecode: not sources, so the same key."""
    from pytest_envmatrix.compiled import source_digest

    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "_ext.c").write_text("int x;\n")
    before = source_digest(tmp_path)
    for name in (".hypothesis/examples/ab", ".coverage", ".pytest_cache/v/x", "src/pkg/__pycache__/m.pyc", "build/temp/_ext.o"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert source_digest(tmp_path) == before
    (tmp_path / "src" / "pkg" / "_ext.c").write_text("int y;\n")
    assert source_digest(tmp_path) != before


def test_the_warning_names_the_projects_own_package(tmp_path):
    for name in ("benchmarks/__init__.py", "emx_np/__init__.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "emx-np"\n')
    found = source_tree_shadowing(tmp_path, tmp_path, True, "prepend", [])
    assert found.startswith("the package emx_np is at the top of")
