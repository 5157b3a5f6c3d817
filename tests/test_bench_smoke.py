"""The benchmark command still works: its smoke size runs end to end and writes a table with figures.

The smoke run needs the package index only to fetch pytest's wheels into
bench/.work/wheels the first time; everything else installs from local files.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIGURE = re.compile(r"\|\s*\d+\.\d+")


@pytest.mark.network
def test_bench_smoke_writes_a_table_with_envmatrix_and_floor_figures(tmp_path):
    output = tmp_path / "performance.md"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", f"--output={output}"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    rows = output.read_text(encoding="utf-8").splitlines()
    for name in ("| pytest-envmatrix", "| floor"):
        found = [row for row in rows if row.startswith(name)]
        assert found, f"no {name} row in:\n" + "\n".join(rows)
        assert all(FIGURE.search(row) for row in found), "\n".join(found)
