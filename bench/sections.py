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


def profile_tables(data: dict) -> list[str]:
    """A profile of the parent's main thread (``bench/run.py``'s ``PROFILE_DRIVER``): its phases and call tree."""
    total = data["total"]
    rows = sorted(data["phases"].items(), key=lambda kv: -kv[1])
    other = total - sum(seconds for _, seconds in rows)
    return [
        "| where the parent's main thread spends its time | s | share |",
        "| --- | --- | --- |",
        *[f"| {label} | {seconds:.3f} | {seconds / total:.0%} |" for label, seconds in rows],
        f"| everything else | {other:.3f} | {other / total:.0%} |",
        "",
        "| inside those phases | s | share |",
        "| --- | --- | --- |",
        *[f"| {label} | {seconds:.3f} | {seconds / total:.0%} |" for label, seconds in data.get("details", {}).items()],
        "",
        "<details><summary>pyinstrument's call tree</summary>",
        "",
        "```",
        *trim_tree(data["text"]),
        "```",
        "",
        "</details>",
        "",
    ]


def trim_tree(text: str, limit: int = 90) -> list[str]:
    """The call tree without pyinstrument's banner, cut to ``limit`` lines."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Profile at")), 0)
    body = [line.rstrip() for line in lines[start:] if line.strip()]
    return body[:limit] + ([f"... {len(body) - limit} more lines"] if len(body) > limit else [])
