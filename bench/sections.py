"""Sections of docs/benchmarks.md that a part of the benchmark measures apart and writes
between its own markers, so that `python -m bench`, rewriting the file, can keep them."""

from __future__ import annotations

from pathlib import Path


def write(path: Path, begin: str, end: str, section: str) -> None:
    """Put `section` (markers included) in place of the one between the markers, or at the end."""
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        text = head + section.rstrip("\n") + rest.partition(end)[2]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def kept(path: Path, begin: str, end: str) -> str:
    """The section as last written, markers included; empty when there is none."""
    text = path.read_text() if path.exists() else ""
    if begin not in text or end not in text:
        return ""
    return "\n" + begin + text.partition(begin)[2].partition(end)[0] + end + "\n"
