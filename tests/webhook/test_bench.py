"""bench/webhook.py still runs end to end; correctness facts only, no timing."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from bench import webhook
from testing.process import ROOT


def test_quick_run() -> None:
    missing = webhook.missing_tools()
    if missing:
        message = f"not installed: {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        [sys.executable, "-m", "bench.webhook", "--reviews", "200"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = [
        line for line in done.stdout.splitlines() if line.startswith(("| pod with", "| pod need"))
    ]
    assert len(rows) == 4, done.stdout
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[2] == "200" and cells[6] == "0", row  # every review answered with a patch
        assert cells[7] == "0", row  # cached: the registry is not asked again
        assert re.fullmatch(r"\d+", cells[3]), row
    whole = done.stdout.splitlines()[-1]
    assert whole.startswith("| (the registry") and whole.endswith("| 1 |"), whole  # once
