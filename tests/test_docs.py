"""The README and docs/ as a reader meets them: links that lead somewhere, a README short
enough to read, the two commands it promises, and options and exit statuses that are the code's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest

from secrets_init import exits

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 350

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(page: Path) -> list[tuple[int, str]]:
    """(line number, text) of every line outside fenced code blocks."""
    lines = []
    fenced = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower-cased, with everything
    but letters, digits, marks, `_`, `-` and spaces removed, and spaces made hyphens."""
    text = _LINK.sub(r"\1", heading)
    text = _CODE_SPAN.sub(r"\2", text)
    text = re.sub(r"<[^>]+>", "", text).replace("**", "").replace("*", "")
    kept = []
    for char in text.lower():
        category = unicodedata.category(char)
        if char in " -_" or category[0] in "LNM":
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page, duplicates numbered `-1`, `-2`, … as GitHub does."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(page):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


@dataclass(frozen=True)
class Link:
    page: Path
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}: {self.target}"


def relative_links(page: Path) -> list[Link]:
    """Links to this repository's files (and anchors), not to the web; code is not prose."""
    links = []
    for number, line in prose_lines(page):
        # Code spans become x's, so code that looks like a link is not one, while a link
        # whose text is code ([`Dockerfile`](../Dockerfile)) still is.
        prose = _CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), line)
        for match in _LINK.finditer(prose):
            target = match.group(2)
            if not _SCHEME.match(target):
                links.append(Link(page, number, target))
    return links


LINKS = [link for page in PAGES for link in relative_links(page)]


def test_pages_have_links_to_check() -> None:
    """Guards the parser: if it found no links at all, every link test would pass vacuously."""
    assert len(LINKS) > 50
    assert any("#" in link.target for link in LINKS)
    assert README in {link.page for link in LINKS}


@pytest.mark.parametrize("link", LINKS, ids=str)
def test_relative_link_resolves(link: Link) -> None:
    path_part, _, anchor = link.target.partition("#")
    assert not path_part.startswith("/"), f"{link}: write links relative to the page"
    target = (link.page.parent / path_part).resolve() if path_part else link.page
    assert target.is_relative_to(ROOT), f"{link}: leaves the repository"
    assert target.exists(), f"{link}: {target.relative_to(ROOT)} does not exist"
    if anchor:
        assert target.suffix == ".md", f"{link}: an anchor into a file that has no headings"
        assert anchor in anchors(target), (
            f"{link}: no heading with anchor #{anchor} in {target.relative_to(ROOT)}"
        )


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Try it (two commands)", "try-it-two-commands"),
        ("`--expand-json` and `--check`", "--expand-json-and---check"),
        ("Endpoint: `EMULATOR_HOST`", "endpoint-emulator_host"),
        ("Speed: batches, all at once", "speed-batches-all-at-once"),
        ("Secrets as files (`?destination=`)", "secrets-as-files-destination"),
        ("Links to [docs](docs/x.md) **here**", "links-to-docs-here"),
    ],
)
def test_slug_follows_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_duplicate_headings_are_numbered(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Errors\n\n```\n# Errors\n```\n\n## Errors\n\n### Errors\n", encoding="utf-8")
    assert anchors(page) == {"errors", "errors-1", "errors-2"}


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


def readme_section(title: str) -> list[str]:
    """The lines of the README's `## title` section, up to the next `## ` heading."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"## {title}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def test_readme_two_commands_exist_and_are_executable() -> None:
    section = readme_section("Try it (two commands)")
    fence = [i for i, line in enumerate(section) if _FENCE.match(line)]
    block = section[fence[0] + 1 : fence[1]]
    commands = [line.split("#")[0].strip() for line in block if line.strip()]
    assert commands == ["./scripts/demo", "./scripts/test"]
    for command in commands:
        path = ROOT / command
        assert path.is_file(), f"{command} does not exist"
        assert os.access(path, os.X_OK), f"{command} is not executable"


def exit_status_table() -> dict[str, str]:
    """The README's exit-status table: the status as written (`1`, `128+N`) -> its meaning."""
    rows = {}
    for line in readme_section("Exit statuses"):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or set(cells[0]) <= set("- :"):
            continue
        status = re.match(r"`([^`]+)`", cells[0])
        if status:
            rows[status.group(1)] = " ".join(cells)
    return rows


# A phrase each status's row must contain, by its name in secrets_init.exits: a
# new status there fails this test until the README's table describes it.
ROW_SAYS = {
    "OK": "the program ran and exited",
    "ERROR": "a secret could not be resolved",
    "USAGE": "usage error",
    "SECRETS_CHANGED": "--on-change exit",
    "LAUNCHER": "single binary",
    "CANNOT_EXECUTE": "cannot be executed",
    "NOT_FOUND": "is not found",
}


def test_exit_status_table_is_the_code_s() -> None:
    table = exit_status_table()
    constants = {
        name: value
        for name, value in vars(exits).items()
        if name.isupper() and not name.startswith("_") and isinstance(value, int)
    }
    undescribed = set(constants) - set(ROW_SAYS)
    assert not undescribed, f"exits.{undescribed} has no row in the README's table"
    assert set(table) == {str(value) for value in constants.values()} | {"128+N"}
    for name, value in constants.items():
        assert ROW_SAYS[name] in table[str(value)], f"row `{value}` does not describe {name}"
    assert "signal N killed the program" in table["128+N"]
    for number in (1, 9, 15, 64):
        assert exits.killed_by(number) == 128 + number


def long_options(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))


def test_readme_options_are_the_help_s() -> None:
    """The README shows every usage line of `--help`, and its option table lists exactly the
    options `--help` does (less its own two)."""
    rows = [line for line in readme_section("Options") if line.startswith("| `-")]
    documented = {sorted(long_options(row.split("|")[1]))[0] for row in rows}
    shown = subprocess.run(
        [sys.executable, "-m", "secrets_init", "--help"],
        env={"PATH": os.defpath, "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    synopsis = readme_section("Options")
    for line in shown.stdout.split("\n\n")[0].splitlines():
        form = line.removeprefix("usage:").strip()
        assert any(row.startswith(form) for row in synopsis), f"the README lacks `{form}`"
    options_part = shown.stdout.split("subcommands:")[0]
    offered = {
        option
        for line in options_part.splitlines()
        if line.startswith("  -")
        for option in sorted(long_options(line.split("  ")[1]))[:1]
    }
    assert documented == offered - {"--help", "--version"}


def contents_lines() -> set[int]:
    """Line numbers of the README's `## Contents` list."""
    numbers = set()
    inside = False
    for number, line in prose_lines(README):
        if line.startswith("## "):
            inside = line == "## Contents"
        elif inside:
            numbers.add(number)
    return numbers


def test_readme_contents_list_every_section() -> None:
    headings = [
        slug(match.group(2))
        for _, line in prose_lines(README)
        if (match := _HEADING.match(line)) and match.group(1) == "##"
    ]
    listed = [
        link.target.removeprefix("#")
        for link in relative_links(README)
        if link.target.startswith("#") and link.line in contents_lines()
    ]
    assert listed == [anchor for anchor in headings if anchor != "contents"]
