"""The sizes the webhook gives the laid tree hold what the build measures, with a margin.

layout.py is the one place these sizes live; this compares it with the build's
own numbers (docs/benchmarks.md's footprint section, written by
`python -m bench.footprint`) and with packaging/parts.py, so that a dependency
bump that outgrows the margin, or a part a family gains, fails here.
"""

from __future__ import annotations

import importlib.util
import re

import pytest

from secrets_init import providers
from secrets_init.webhook import layout
from testing.process import ROOT

FOOTPRINT = (ROOT / "docs" / "benchmarks.md").read_text().split("<!-- footprint")[1]
# The measured `lay` of each pod kind: its row in the footprint table, and its families.
POD_KINDS = {
    "no references (a plain init)": (),
    "only AWS references": ("aws",),
    "only Google references": ("google",),
    "AWS and Google references": ("aws", "google"),
}


def _megabytes(row: str) -> int:
    """The first cell after the row's name, in bytes (the table's MB are 10^6 bytes)."""
    found = re.search(rf"^\| {re.escape(row)} \| ([\d.]+) MB", FOOTPRINT, re.MULTILINE)
    assert found is not None, row
    return round(float(found.group(1)) * 1_000_000)


def _packaging_parts() -> tuple[tuple[str, tuple[str, ...]], ...]:
    spec = importlib.util.spec_from_file_location("_parts", ROOT / "packaging" / "parts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parts: tuple[tuple[str, tuple[str, ...]], ...] = module.PARTS
    return parts


def test_each_part_is_as_large_as_the_build_lists_it() -> None:
    for part, size in layout.PART_BYTES.items():
        assert size >= _megabytes(part), part


def test_each_family_lays_the_parts_the_build_gives_it() -> None:
    parts = _packaging_parts()
    assert set(layout.PART_BYTES) == {part for part, _ in parts}
    assert set(layout.FAMILY_PARTS) == set(providers.FAMILIES)
    for family, needed in layout.FAMILY_PARTS.items():
        assert set(needed) == {part for part, families in parts if family in families}


@pytest.mark.parametrize("kind", sorted(POD_KINDS))
def test_the_tree_holds_the_measured_lay_with_ten_percent_to_spare(kind: str) -> None:
    assert layout.tree_bytes(POD_KINDS[kind]) >= 1.1 * _megabytes(kind)


def test_sizes_per_pod_kind() -> None:
    """What a pod is given, in MiB (docs/webhook.md shows these)."""
    assert {kind: layout.tree_bytes(f) >> 20 for kind, f in POD_KINDS.items()} == {
        "no references (a plain init)": 20,
        "only AWS references": 31,
        "only Google references": 43,
        "AWS and Google references": 47,
    }


def test_lay_is_never_given_no_family() -> None:
    """`lay` given no family lays them all: a pod needing none says `none`."""
    assert layout.lay_families([]) == ["none"]
    assert layout.lay_families(["aws"]) == ["aws"]
    assert layout.lay_families(["google"]) == ["google"]
    assert layout.lay_families(providers.FAMILIES) == ["all"]


def test_the_webhook_docs_give_these_sizes() -> None:
    """docs/webhook.md's table of what each pod kind is given, as layout.py computes it."""
    text = (ROOT / "docs" / "webhook.md").read_text()
    for laid, families in {
        "aws": ("aws",),
        "google": ("google",),
        "all": providers.FAMILIES,
    }.items():
        size = layout.tree_bytes(families) >> 20
        assert re.search(rf"\| `{laid}` \| [\d.]+ MB \| {size}Mi \| {size + 32}Mi \|", text), laid
