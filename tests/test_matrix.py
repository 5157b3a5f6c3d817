"""The marker contract, checked without building anything (matrix.py is pure)."""

import pytest

from pytest_envmatrix.matrix import MarkerError, build_matrix, canonical_requirement, check_pytest_runs


def combos(*marks, base_deps=()):
    """``marks`` closest first, each ``(args, kwargs)``."""
    return build_matrix(marks, where="test_x.py::test_x").combinations(base_deps)


def ids(*marks):
    return [c.id for c in combos(*marks)]


def test_one_axis_one_combination_per_value():
    assert ids(((), {"numpy": ["1.26.4", "2.1.3"]})) == ["numpy-1.26.4", "numpy-2.1.3"]


def test_axes_make_the_cartesian_product_with_ids_sorted_by_name():
    assert ids(((), {"pandas": ["2.2.3"], "numpy": ["1.26.4", "2.1.3"]})) == [
        "numpy-1.26.4-pandas-2.2.3",
        "numpy-2.1.3-pandas-2.2.3",
    ]


def test_exact_version_means_equals_and_specifier_is_kept_as_written():
    exact, spec = combos(((), {"numpy": ["1.26.4", ">=2,<2.2"]}))
    assert "numpy==1.26.4" in exact.env.requirements
    assert "numpy<2.2,>=2" in spec.env.requirements
    assert spec.id == "numpy->=2,<2.2"


def test_dict_form_for_names_that_are_not_identifiers():
    (c,) = combos((({"scikit-learn": ["1.5.2"]},), {}))
    assert c.id == "scikit-learn-1.5.2"
    assert c.env.requirements == ("scikit-learn==1.5.2",)


def test_names_compare_canonicalized_and_closest_marker_wins():
    (c,) = combos(((({"Scikit_Learn": ["1.6.1"]}),), {}), ((({"scikit-learn": ["1.5.2"]}),), {}))
    assert c.id == "Scikit_Learn-1.6.1"
    assert c.env.requirements == ("scikit-learn==1.6.1",)


def test_markers_merge_axes_and_accumulate_deps():
    function = ((), {"numpy": ["2.1.3"], "deps": ["scipy>=1.11"]})
    module = ((), {"numpy": ["1.26.4"], "pandas": ["2.2.3"], "deps": ["attrs"]})
    (c,) = combos(function, module)
    assert c.id == "numpy-2.1.3-pandas-2.2.3"
    assert c.env.requirements == ("attrs", "numpy==2.1.3", "pandas==2.2.3", "scipy>=1.11")


def test_base_deps_go_into_every_environment():
    (c,) = combos(((), {"numpy": ["2.1.3"]}), base_deps=["Hypothesis>=6"])
    assert c.env.requirements == ("hypothesis>=6", "numpy==2.1.3")


def test_python_axis_comes_first_in_ids():
    assert ids(((), {"python": ["3.10", "3.12"], "numpy": ["2.1.3"]})) == ["py3.10-numpy-2.1.3", "py3.12-numpy-2.1.3"]


def test_exclude_drops_matching_combinations():
    mark = ((), {"python": ["3.12", "3.13"], "numpy": ["1.26.4", "2.1.3"], "exclude": [{"python": "3.13", "numpy": "1.26.4"}]})
    assert ids(mark) == ["py3.12-numpy-1.26.4", "py3.12-numpy-2.1.3", "py3.13-numpy-2.1.3"]


def test_same_requirements_give_one_environment():
    a = combos(((), {"numpy": ["1.26.4"]}))[0]
    b = combos(((), {"NumPy": ["1.26.4"]}))[0]
    assert a.env == b.env
    assert a.id != b.id


def test_canonical_requirement_is_spelling_independent():
    assert canonical_requirement("Scikit_Learn[Extra,alldeps] >= 1.0 ,<2") == canonical_requirement(
        "scikit-learn[alldeps,extra]<2,>=1.0"
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"numpy": []}, "axis 'numpy' is an empty list"),
        ({"numpy": ["1.26.4", "banana"]}, "'banana' is neither a version"),
        ({"numpy": [1.26]}, "value 1.26 is a float, not a string"),
        ({"numpy": "1.26.4", "NumPy": "2.1.3"}, "same package as 'numpy'"),
        ({"not a name!": ["1.0"]}, "'not a name!' is not a valid distribution name"),
        ({"numpy": ["1.0"], "exclude": [{"pandas": "2.0"}]}, "exclude names axis 'pandas'"),
        ({"numpy": ["1.0"], "exclude": [{"python": "3.12"}]}, "no marker sets python"),
        ({"numpy": ["1.0", "1.0.0"]}, "repeats '1.0'"),
        ({"numpy": ["1.0"], "deps": ["scipy>>1"]}, "'scipy>>1' is not a valid requirement"),
        ({"numpy": ["1.0"], "python": [3.12]}, "3.12 is not an interpreter version"),
        ({"numpy": ["1.0"], "excludes": [{"numpy": "1.0"}]}, "unknown keyword 'excludes'; did you mean 'exclude'?"),
        ({"numpy": ["1.0"], "dep": ["scipy"]}, "unknown keyword 'dep'; did you mean 'deps'?"),
        ({"numpy": ["../../x"]}, "'../../x' is neither a version"),
        ({"../../x": ["1.0"]}, "'../../x' is not a valid distribution name"),
    ],
)
def test_bad_input_names_the_test_and_the_value(kwargs, message):
    with pytest.raises(MarkerError) as excinfo:
        combos(((), kwargs))
    assert "test_x.py::test_x" in str(excinfo.value)
    assert message in str(excinfo.value)


def test_dict_with_a_non_string_key_is_rejected():
    with pytest.raises(MarkerError, match="package name must be a string, not 3"):
        combos((({3: ["1.0"]},), {}))


def test_positional_argument_must_be_a_dict():
    with pytest.raises(MarkerError, match="not 'numpy'"):
        combos(((("numpy"),), {}))


def test_two_values_for_one_environment_are_rejected():
    with pytest.raises(MarkerError, match="combinations 'numpy-1.0' and 'numpy-==1.0' ask for the same environment"):
        combos(((), {"numpy": ["1.0", "==1.0"]}))


def test_the_same_name_in_two_dicts_is_rejected():
    with pytest.raises(MarkerError, match="axis 'numpy' is given twice"):
        combos((({"numpy": ["1.0"]}, {"numpy": ["2.0"]}), {}))


def test_exclude_of_the_wrong_type_says_what_it_wants():
    with pytest.raises(MarkerError, match="exclude must be a list of dicts, not 3"):
        combos(((), {"numpy": ["1.0"], "exclude": 3}))


def test_exclude_rules_that_leave_no_combination_are_an_error():
    with pytest.raises(MarkerError) as excinfo:
        combos(((), {"numpy": ["1.0", "2.0"], "exclude": [{"numpy": "1.0"}, {"numpy": "2.0.0"}]}))
    assert str(excinfo.value) == (
        "test_x.py::test_x: envmatrix exclude rules leave no combination (they exclude all 2); "
        "remove the marker or loosen the rules"
    )


@pytest.mark.parametrize(
    "value",
    ["3.12", "3.12.1", "312", "cpython3.12", "CPython3.12", "pypy3.10", "python3.11", "py3.12", "graalpy24",
     "3.13t", "python3.13t", "3.12-64", "cpython3.12-64-arm64", "3.12d", "/usr/bin/python3", " 3.12 "],
)
def test_python_accepts_the_interpreter_requests_people_write(value):
    (c,) = combos(((), {"python": [value]}))
    assert c.python == value.strip()


@pytest.mark.parametrize(
    "value",
    ["--index-url=http://x", "3.11; touch x", "3.11 x", "python 3.11", "../bin/python", "python3.11/x",
     "pyhton3.12", "3.12.1.5", "3.x", ">=3.11", "/opt/py[3]/bin/python"],
)
def test_python_rejects_what_is_not_an_interpreter_request(value):
    with pytest.raises(MarkerError) as excinfo:
        combos(((), {"python": [value]}))
    message = str(excinfo.value)
    assert message.startswith(f"test_x.py::test_x: envmatrix python: {value!r} is not an interpreter request")
    assert "'3.12'" in message and "'pypy3.10'" in message


@pytest.mark.parametrize("value", ["===1.0", ">=1,===2"])
def test_arbitrary_equality_is_rejected_with_a_hint(value):
    with pytest.raises(MarkerError) as excinfo:
        combos(((), {"numpy": [value]}))
    assert f"envmatrix axis 'numpy': {value!r} uses arbitrary equality ('===')" in str(excinfo.value)
    assert str(excinfo.value).endswith(f"write {value.replace('===', '==')!r}")


def test_python_values_that_give_one_id_are_rejected():
    with pytest.raises(MarkerError, match=r"combinations 'py3.12' and 'py3.12' have the same id"):
        combos(((), {"python": ["3.12", "py3.12"]}))


@pytest.mark.parametrize(
    "marks, message",
    [
        (
            ((), {"numpy": ["1.26.4", "2.1.3"], "deps": ["numpy<2"]}),
            "envmatrix deps: 'numpy<2' excludes numpy 2.1.3 (combination 'numpy-2.1.3'): that environment could never be installed",
        ),
        (
            ((), {"numpy": ["1.26.4"], "deps": ["numpy @ https://example.invalid/numpy.whl"]}),
            "envmatrix deps: 'numpy @ https://example.invalid/numpy.whl' installs numpy from a URL, "
            "which conflicts with the axis 'numpy'",
        ),
    ],
)
def test_deps_that_conflict_with_an_axis_are_rejected(marks, message):
    with pytest.raises(MarkerError) as excinfo:
        combos(marks)
    assert message in str(excinfo.value)


def test_ini_deps_that_conflict_with_an_axis_are_named_as_such():
    with pytest.raises(MarkerError, match=r"ini option envmatrix_deps: 'numpy>=2' excludes numpy 1.26.4"):
        combos(((), {"numpy": ["1.26.4"]}), base_deps=["numpy>=2"])


@pytest.mark.parametrize(
    "deps",
    [["numpy<3"], ["numpy[extra]"], ["numpy<2; python_version < '3'"], ["scipy<2"]],
)
def test_deps_on_an_axis_package_that_every_value_satisfies_are_fine(deps):
    assert ids(((), {"numpy": ["1.26.4", "2.1.3", ">=2.2"], "deps": deps})) == [
        "numpy-1.26.4", "numpy-2.1.3", "numpy->=2.2",
    ]


def test_deps_pinning_one_package_to_two_versions_are_rejected():
    with pytest.raises(MarkerError) as excinfo:
        combos(((), {"numpy": ["1.0"], "deps": ["attrs==23.2.0"]}), ((), {"deps": ["attrs>=24"]}))
    assert str(excinfo.value) == (
        "test_x.py::test_x: envmatrix deps: 'attrs>=24' excludes attrs 23.2.0, which envmatrix deps: "
        "'attrs==23.2.0' pins: no environment of this test could ever be installed"
    )


def test_deps_that_agree_or_apply_under_markers_are_fine():
    (c,) = combos(((), {"deps": ["attrs==23.2.0", "attrs>=23", "attrs<23; python_version < '3'", "attrs==23.*"]}))
    assert c.id == ""


def test_a_python_value_that_cannot_run_the_pinned_pytest_is_rejected():
    matrix = build_matrix([((), {"python": ["3.9", "3.12"], "numpy": ["2.1.3"]})], where="test_x.py::test_x")
    combinations = matrix.combinations()
    with pytest.raises(MarkerError) as excinfo:
        check_pytest_runs(combinations, "9.2.0", ">=3.10", where="test_x.py::test_x")
    assert str(excinfo.value) == (
        "test_x.py::test_x: envmatrix python: '3.9' cannot run pytest 9.2.0 (Requires-Python >=3.10), which every "
        "environment gets unless the matrix names pytest: add deps=['pytest<9'] (or another pytest) to this test"
    )


@pytest.mark.parametrize(
    "python, deps, requires",
    [
        (["3.10", "3.13", "pypy3.11", "3", "/usr/bin/python3"], [], ">=3.10"),
        (["3.8"], [], ">=3.8.1"),  # some 3.8 satisfies it
        (["3.9"], ["pytest<9"], ">=3.10"),  # the matrix names pytest: its own choice
        (["3.9"], [], None),  # no Requires-Python to go by
    ],
)
def test_python_values_the_pinned_pytest_may_run_on_are_fine(python, deps, requires):
    marks = [((), {"python": python, "deps": deps} if deps else {"python": python})]
    check_pytest_runs(build_matrix(marks, where="t").combinations(), "9.2.0", requires, where="t")
