"""bench/webhook.py still runs end to end; correctness facts only, no timing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import webhook
from testing.process import ROOT


def test_quick_run(tmp_path: Path) -> None:
    missing = webhook.missing_tools()
    if missing:
        message = f"not installed: {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nkept\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench.webhook", "--reviews", "200", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = [
        line for line in done.stdout.splitlines() if line.startswith(("| pod with", "| pod need"))
    ]
    assert len(rows) == 2 * len(webhook.LOADS), done.stdout
    loads = set()
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[1] == webhook.THIS_BUILD, row
        loads.add(cells[2])
        assert cells[3] == "200" and cells[9] == "0", row  # every review answered with a patch
        assert cells[10] == "0", row  # cached: the registry is not asked again
        assert re.fullmatch(r"\d+", cells[4]), row
    assert loads == {label for label, _, _ in webhook.LOADS}
    whole = done.stdout.splitlines()[-1]
    assert whole.startswith("| (the registry") and whole.endswith("| 1 |"), whole  # once
    written = out.read_text()
    assert written.startswith("# Benchmarks\n\nkept\n")
    assert written.count(webhook.BEGIN) == 1 and written.count(webhook.END) == 1
    assert all(row in written for row in rows)
