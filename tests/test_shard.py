"""The split of environments over shards, without processes: deterministic, whole environments, balanced."""

from __future__ import annotations

import json
import random

import pytest

from pytest_envmatrix.shard import Durations, Shard, ShardError, assign, item_weights, parse_shard, suite_weights, without_combination


@pytest.mark.parametrize("text, shard", [("1/1", Shard(1, 1)), ("2/4", Shard(2, 4)), (" 3 / 3 ", Shard(3, 3))])
def test_parse_shard(text, shard):
    assert parse_shard(text) == shard
    assert str(parse_shard(text)) == text.replace(" ", "")


@pytest.mark.parametrize(
    "text, message",
    [
        ("0/3", "--envmatrix-shard: '0/3': K must be between 1 and N (3)"),
        ("4/3", "--envmatrix-shard: '4/3': K must be between 1 and N (3)"),
        ("1/0", "--envmatrix-shard: '1/0': N must be at least 1"),
        ("2", "--envmatrix-shard: '2' is not K/N (this job's shard K of N shards, e.g. 2/4)"),
        ("a/b", "--envmatrix-shard: 'a/b' is not K/N (this job's shard K of N shards, e.g. 2/4)"),
        ("-1/2", "--envmatrix-shard: '-1/2' is not K/N (this job's shard K of N shards, e.g. 2/4)"),
    ],
)
def test_bad_shards_say_what_is_wrong(text, message):
    with pytest.raises(ShardError) as raised:
        parse_shard(text)
    assert str(raised.value) == message


def test_assignment_does_not_depend_on_the_order_environments_are_met():
    weights = {f"emx-demo=={n}.0": float(n % 4 + 1) for n in range(12)}
    first = assign(weights, 3)
    labels = list(weights)
    for seed in range(5):
        random.Random(seed).shuffle(labels)
        assert assign({label: weights[label] for label in labels}, 3) == first


def test_every_environment_goes_to_exactly_one_shard_and_every_shard_is_used_when_it_can_be():
    weights = {f"env{n}": 1.0 for n in range(7)}
    for total in range(1, 9):
        assignment = assign(weights, total)
        assert set(assignment) == set(weights)
        assert set(assignment.values()) == set(range(1, min(total, 7) + 1))


def test_heaviest_first_into_the_least_loaded_shard():
    # one slow environment gets a shard to itself; the rest share the other
    assignment = assign({"slow": 10.0, "a": 3.0, "b": 3.0, "c": 3.0}, 2)
    assert assignment == {"slow": 1, "a": 2, "b": 2, "c": 2}


def test_the_parent_s_items_load_shard_one():
    assert assign({"a": 2.0, "b": 2.0}, 2, base_load=5.0) == {"a": 2, "b": 2}
    assert assign({"a": 2.0, "b": 2.0}, 2, base_load=1.0) == {"a": 2, "b": 1}


def test_ties_go_to_the_lowest_label_and_shard():
    assert assign({"b": 1.0, "a": 1.0}, 2) == {"a": 1, "b": 2}


ITEMS = [
    ("t.py::test_fast[numpy-1.0]", "numpy==1.0", "numpy-1.0"),
    ("t.py::test_fast[numpy-2.0]", "numpy==2.0", "numpy-2.0"),
    ("t.py::test_slow[numpy-1.0]", "numpy==1.0", "numpy-1.0"),
    ("t.py::test_slow[numpy-2.0]", "numpy==2.0", "numpy-2.0"),
    ("t.py::test_slow[numpy-3.0]", "numpy==3.0", "numpy-3.0"),
    ("t.py::test_plain", None, None),
]


def test_weights_are_item_counts_without_durations():
    weights, parent = item_weights(ITEMS, None)
    assert weights == {"numpy==1.0": 2.0, "numpy==2.0": 2.0, "numpy==3.0": 1.0}
    assert parent == 1.0


def test_durations_weigh_items_and_estimate_the_unknown_from_the_same_test_elsewhere():
    durations = Durations(
        {
            "t.py::test_fast[numpy-1.0]": (1.0, "numpy-1.0"),
            "t.py::test_fast[numpy-2.0]": (1.0, "numpy-2.0"),
            "t.py::test_slow[numpy-1.0]": (30.0, "numpy-1.0"),
            "t.py::test_slow[numpy-2.0]": (50.0, "numpy-2.0"),
            "t.py::test_plain": (2.0, ""),
        }
    )
    weights, parent = item_weights(ITEMS, durations)
    # numpy-3.0 is new (a version added to the axis): its test_slow is taken as test_slow's mean elsewhere
    assert weights == {"numpy==1.0": 31.0, "numpy==2.0": 51.0, "numpy==3.0": 40.0}
    assert parent == 2.0
    # an item nobody recorded anything like is taken as the mean of all
    weights, _ = item_weights([("t.py::test_new[numpy-1.0]", "numpy==1.0", "numpy-1.0")], durations)
    assert weights == {"numpy==1.0": pytest.approx(84.0 / 5)}


def test_durations_balance_where_counts_would_not():
    """Two environments with one slow test each and one with many fast ones, over two shards."""
    items = [("t.py::test_slow[a]", "a", "a"), ("t.py::test_slow[b]", "b", "b")]
    items += [(f"t.py::test_fast[c-{n}]", "c", "c") for n in range(5)]
    by_count = assign(item_weights(items, None)[0], 2)
    assert by_count["a"] == by_count["b"]  # counts: a and b look light, so they share a shard
    durations = Durations({"t.py::test_slow[a]": (60.0, "a"), "t.py::test_slow[b]": (60.0, "b")})
    durations.items.update({f"t.py::test_fast[c-{n}]": (0.1, "c") for n in range(5)})
    by_time = assign(item_weights(items, durations)[0], 2)
    assert by_time["a"] != by_time["b"]


def test_suite_weights_come_from_the_combinations_recorded():
    durations = Durations({"t.py::test_x[numpy-1.0]": (4.0, "numpy-1.0"), "t.py::test_y[numpy-1.0]": (2.0, "numpy-1.0")})
    durations.items["t.py::test_x[numpy-2.0]"] = (10.0, "numpy-2.0")
    weights = suite_weights([("numpy==1.0", "numpy-1.0"), ("numpy==2.0", "numpy-2.0"), ("numpy==3.0", "numpy-3.0")], durations)
    assert weights == {"numpy==1.0": 6.0, "numpy==2.0": 10.0, "numpy==3.0": 8.0}
    assert suite_weights([("numpy==1.0", "numpy-1.0")], None) == {"numpy==1.0": 1.0}


def test_without_combination_removes_the_combination_only():
    assert without_combination("t.py::test_a[numpy-1.0]", "numpy-1.0") == "t.py::test_a"
    assert without_combination("t.py::test_a[numpy-1.0-3]", "numpy-1.0") == "t.py::test_a[3]"


def test_durations_file_round_trip_and_update_keeps_what_was_not_run():
    durations = Durations({"t.py::a[x]": (1.5, "x"), "t.py::b[x]": (2.0, "x")})
    durations.update({"t.py::a[x]": (3.25, "x")})
    again = Durations.parse(durations.dumps(), "d.json")
    assert again.items == {"t.py::a[x]": (3.25, "x"), "t.py::b[x]": (2.0, "x")}


@pytest.mark.parametrize(
    "text, message",
    [
        ("{", "durations file d.json: not JSON"),
        ("[]", "durations file d.json: not a file --envmatrix-store-durations wrote"),
        ('{"format": 2, "items": {}}', "durations file d.json: not a file --envmatrix-store-durations wrote"),
        (json.dumps({"format": 1, "items": {"t.py::a": {"seconds": "1"}}}), "durations file d.json: the entry for 't.py::a' is not"),
        (json.dumps({"format": 1, "items": {"t.py::a": {"seconds": -1, "combination": ""}}}), "durations file d.json: the entry for 't.py::a' is not"),
        ("[" * 100000, "durations file d.json: not JSON"),
    ],
)
def test_a_bad_durations_file_is_named(text, message):
    with pytest.raises(ShardError) as raised:
        Durations.parse(text, "d.json")
    assert str(raised.value).startswith(message)
