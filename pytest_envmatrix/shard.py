"""Splitting a matrix over N CI jobs, by whole environments.

Pure: no I/O but the parsing of a durations file's text, no processes. A
shard is a set of environments, never part of one: an environment split
over two jobs would be built twice. Every job computes the same split from
the same collection, with nothing that differs between machines or
processes: environments are identified by their label (the python request
and the canonical requirements, which the markers alone decide), ordered by
it, and packed largest first into the least loaded shard, ties going to the
lowest shard number. Items that run in the parent (unmarked tests) all go to
shard 1, whose load they add to.

The weight of an environment is its number of items, or, with a durations
file, the seconds its items took when they were recorded. An item the file
does not know (a new test, a version bumped on an axis) is estimated from the
same test in its other combinations, else from the mean of all recorded
items, so a file recorded before a change still balances after it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DURATIONS_FORMAT = 1

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class ShardError(ValueError):
    """A bad ``--envmatrix-shard`` value or durations file; the message names it."""


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str, source: str = "--envmatrix-shard") -> Shard:
    found = _SHARD.fullmatch(text or "")
    if found is None:
        raise ShardError(f"{source}: {text!r} is not K/N (this job's shard K of N shards, e.g. 2/4)")
    index, total = int(found.group(1)), int(found.group(2))
    if total < 1:
        raise ShardError(f"{source}: {text!r}: N must be at least 1")
    if not 1 <= index <= total:
        raise ShardError(f"{source}: {text!r}: K must be between 1 and N ({total})")
    return Shard(index, total)


def assign(weights: Mapping[str, float], total: int, base_load: float = 0.0) -> dict[str, int]:
    """Environment label → its shard (1-based): greedy, heaviest first, into the least loaded shard.

    ``base_load``: what shard 1 carries besides environments (the unmarked tests).
    """
    loads = [0.0] * total
    loads[0] = base_load
    out = {}
    for label in sorted(weights, key=lambda label: (-weights[label], label)):
        shard = min(range(total), key=lambda index: (loads[index], index))
        loads[shard] += weights[label]
        out[label] = shard + 1
    return out


def without_combination(nodeid: str, combination_id: str) -> str:
    """The item's node id without its combination: the same test in every combination."""
    return nodeid.replace(f"[{combination_id}]", "").replace(f"[{combination_id}-", "[")


@dataclass
class Durations:
    """Recorded seconds per item (node id → (seconds, combination id)), as a durations file holds them."""

    items: dict[str, tuple[float, str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, where: str) -> Durations:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ShardError(f"durations file {where}: not JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != DURATIONS_FORMAT or not isinstance(data.get("items"), dict):
            raise ShardError(
                f"durations file {where}: not a file --envmatrix-store-durations wrote "
                f'(expected {{"format": {DURATIONS_FORMAT}, "items": {{...}}}}); write it again with --envmatrix-store-durations'
            )
        items = {}
        for nodeid, entry in data["items"].items():
            seconds = entry.get("seconds") if isinstance(entry, dict) else None
            combination = entry.get("combination") if isinstance(entry, dict) else None
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0 or not isinstance(combination, str):
                raise ShardError(f"durations file {where}: the entry for {nodeid!r} is not {{\"seconds\": <number>, \"combination\": <id>}}")
            items[nodeid] = (float(seconds), combination)
        return cls(items)

    def dumps(self) -> str:
        items = {nodeid: {"seconds": round(seconds, 4), "combination": combination} for nodeid, (seconds, combination) in sorted(self.items.items())}
        return json.dumps({"format": DURATIONS_FORMAT, "items": items}, indent=1) + "\n"

    def update(self, measured: Mapping[str, tuple[float, str]]) -> None:
        """Take this run's measurements; items it did not run keep what was recorded."""
        self.items.update(measured)

    def estimator(self):
        """A function (node id, combination id) → estimated seconds, or None when nothing is recorded."""
        if not self.items:
            return None
        mean = sum(seconds for seconds, _ in self.items.values()) / len(self.items)
        per_test: dict[str, list[float]] = {}
        for nodeid, (seconds, combination) in self.items.items():
            per_test.setdefault(without_combination(nodeid, combination), []).append(seconds)

        def estimate(nodeid: str, combination: str | None) -> float:
            if nodeid in self.items:
                return self.items[nodeid][0]
            if combination is not None:
                same_test = per_test.get(without_combination(nodeid, combination))
                if same_test:
                    return sum(same_test) / len(same_test)
            return mean

        return estimate

    def combination_seconds(self) -> dict[str, float]:
        """Combination id → the recorded seconds of its items: the weight of a suite-wide environment."""
        out: dict[str, float] = {}
        for seconds, combination in self.items.values():
            out[combination] = out.get(combination, 0.0) + seconds
        return out


def item_weights(
    items: Iterable[tuple[str, str | None, str | None]], durations: Durations | None
) -> tuple[dict[str, float], float]:
    """(environment label → weight, weight of the items that run in the parent).

    ``items``: (node id, environment label or None for an unmarked item, combination id or None).
    """
    estimate = durations.estimator() if durations is not None else None
    weights: dict[str, float] = {}
    parent = 0.0
    for nodeid, label, combination in items:
        weight = estimate(nodeid, combination) if estimate is not None else 1.0
        if label is None:
            parent += weight
        else:
            weights[label] = weights.get(label, 0.0) + weight
    return weights, parent


def suite_weights(combinations: Iterable[tuple[str, str]], durations: Durations | None) -> dict[str, float]:
    """Environment label → weight, for a suite-wide matrix, before anything is collected.

    ``combinations``: (environment label, combination id). Without durations
    every environment weighs the same (each collects the same suite).
    """
    recorded = durations.combination_seconds() if durations is not None else {}
    pairs = list(combinations)
    known = [recorded[cid] for _, cid in pairs if cid in recorded]
    fallback = sum(known) / len(known) if known else 1.0
    return {label: (recorded.get(cid, fallback) if recorded else 1.0) for label, cid in pairs}
