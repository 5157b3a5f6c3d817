"""docs/performance.md is written by several benchmarks, each owning one section between its markers.

A benchmark rewrites only its own section, so running one does not lose what
the others measured; a section not there yet is appended.
"""

from __future__ import annotations

from pathlib import Path


def write_section(output: Path, section: str, start: str, end: str) -> None:
    """Put ``section`` (which begins with ``start`` and ends with ``end``) in place of the one in ``output``."""
    text = output.read_text(encoding="utf-8") if output.exists() else ""
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section.rstrip("\n") + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    output.write_text(text, encoding="utf-8")
