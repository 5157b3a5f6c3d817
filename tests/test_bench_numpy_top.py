"""The numpy-at-the-top benchmark's measurement and report pieces, without running a benchmark.

Its runs need numpy from the package index and take minutes (``python bench/numpy_top.py``);
what can go wrong without them is the order of the alternating runs and where the section lands
in ``docs/performance.md``, which ``bench/run.py`` rewrites around it.
"""

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def bench_modules(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import measure
    import numpy_top_report

    return measure, numpy_top_report


def test_each_round_runs_every_way_once_the_order_reversed_every_other_round_and_the_warm_up_uncounted(bench_modules, capsys):
    measure, _ = bench_modules
    ran = []
    ways = {name: (lambda name=name: ran.append(name)) for name in ("envmatrix", "floor", "suite")}
    samples = measure.alternate(ways, rounds=3, warmup=True)
    assert ran == ["suite", "floor", "envmatrix", "envmatrix", "floor", "suite", "suite", "floor", "envmatrix", "envmatrix", "floor", "suite"]
    assert {name: len(found) for name, found in samples.items()} == {"envmatrix": 3, "floor": 3, "suite": 3}
    assert "warm-up" in capsys.readouterr().err


def test_the_section_replaces_its_earlier_version_and_leaves_the_rest_of_the_report(bench_modules, tmp_path):
    _, report = bench_modules
    doc = tmp_path / "performance.md"
    doc.write_text(f"# Performance\n\nbefore\n\n{report.START}\nold figures\n{report.END}\n\nafter\n", encoding="utf-8")
    report.write_section(doc, f"{report.START}\nnew figures\n{report.END}\n")
    text = doc.read_text(encoding="utf-8")
    assert "old figures" not in text
    assert text == f"# Performance\n\nbefore\n\n{report.START}\nnew figures\n{report.END}\n\nafter\n"


def test_the_section_is_appended_to_a_report_without_one(bench_modules, tmp_path):
    _, report = bench_modules
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nfigures\n", encoding="utf-8")
    report.write_section(doc, f"{report.START}\nnumpy at the top\n{report.END}\n")
    assert doc.read_text(encoding="utf-8") == f"# Performance\n\nfigures\n\n{report.START}\nnumpy at the top\n{report.END}\n"


def test_the_full_benchmark_carries_the_section_over_when_it_rewrites_the_report(bench_modules, tmp_path, monkeypatch):
    _, report = bench_modules
    pytest.importorskip("uv", reason="bench/run.py finds uv at import")  # the [uv] extra, as the benchmark needs
    monkeypatch.setattr(sys, "argv", ["run.py"])
    import run

    doc = tmp_path / "performance.md"
    doc.write_text(f"# Performance\n\nold main table\n\n{report.START}\nnumpy at the top\n{report.END}\n", encoding="utf-8")
    kept = run.kept_sections(doc)
    assert f"{report.START}\nnumpy at the top\n{report.END}" in kept
    assert "old main table" not in kept
