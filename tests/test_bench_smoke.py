"""The benchmark command still works: its smoke size runs end to end and writes a table with figures.

The smoke run needs the package index only to fetch pytest's wheels into its
work folder; everything else installs from local files. The test gives it a
work folder under pytest's temporary directory: nothing is written in the
checkout.
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
    work = tmp_path / "work"
    before = _files_under(REPO / "bench")
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", f"--output={output}", f"--work-dir={work}"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert _files_under(REPO / "bench") == before  # everything went to the work folder
    assert (work / "wheels").is_dir() and (work / "parent").is_dir()
    rows = output.read_text(encoding="utf-8").splitlines()
    for name in ("| pytest-envmatrix", "| floor"):
        found = [row for row in rows if row.startswith(name)]
        assert found, f"no {name} row in:\n" + "\n".join(rows)
        assert all(FIGURE.search(row) for row in found), "\n".join(found)


def _files_under(folder: Path) -> dict[str, int]:
    """Each file below ``folder`` and when it last changed."""
    return {str(p): p.lstat().st_mtime_ns for p in folder.rglob("*")}
