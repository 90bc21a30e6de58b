"""`python -m bench.footprint` runs against the binary and writes its section.

No timing is judged here; what is checked is what the section claims as
facts: each kind of pod has a row, the application container wrote nothing
to the laid volume, and every part of the tree is listed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testing.process import ROOT, child_env
from tests.binary.conftest import BINARY, require_binary

pytestmark = pytest.mark.binary


def _write_footprint(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.footprint", "--binary", str(BINARY), "--runs", "1",
         "--out", str(out)],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_the_footprint_section_is_written(tmp_path: Path) -> None:
    require_binary()
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nkept as it was\n")
    done = _write_footprint(out)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nkept as it was\n")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    for pod in ("no references (a plain init)", "only AWS references", "only Google references",
                "AWS and Google references"):  # fmt: skip
        assert " + 0 B |" in rows[pod], rows[pod]  # the application container wrote nothing
    for part in ("core", "tls", "aws", "google"):
        assert part in rows
    # Written again, the section is replaced, not added.
    again = _write_footprint(out)
    assert again.returncode == 0, again.stderr
    assert out.read_text().count("## Per-pod footprint") == 1
