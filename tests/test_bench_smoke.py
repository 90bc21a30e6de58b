"""The benchmark command still runs end to end and writes its report.

Benchmarks are not tests: nothing here looks at a timing. `--quick` shrinks
every size (3 start-up runs, 1-6 references, 200 orphans) so this takes
seconds; what is checked is that each part produced rows, that the report
names the machine, and that correctness facts (no zombie left) hold.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report
from bench.resolution import sdk_import_ms
from testing.process import ROOT, child_env, unshare_available

NUMBER = r"\d+(\.\d+)?"


def _row(report: str, label: str) -> list[str]:
    for line in report.splitlines():
        if line.startswith(f"| {label} |"):
            return [cell.strip() for cell in line.strip("|").split("|")]
    raise AssertionError(f"no row {label!r} in the report")


def test_quick_run_writes_every_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-chart", "--out", str(tmp_path)],
        cwd=ROOT,
        env=child_env(**({"CI": os.environ["CI"]} if "CI" in os.environ else {})),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "benchmarks.md").read_text()

    for heading in ("## Goals", "## 1. Start-up", "## 2. Resident memory", "## 3. Secret", "## 4."):
        assert heading in text
    assert re.search(r"\| cores \| \d+ ", text)
    assert "| Python | CPython 3." in text
    assert "quick mode" in text

    # Part 1: the bare commands always exist, so they have a median.
    for label in ("`true` (bare)", "`python -I -S -c pass`", "`python -I -m secrets_init -- true`"):
        assert re.fullmatch(NUMBER, _row(text, label)[1]), _row(text, label)
    # Part 2: the module supervised `sleep`, alone in its tree.
    memory = _row(text, "secrets-init, module")
    assert memory[1] == "1" and re.fullmatch(NUMBER, memory[2]), memory
    # Part 3: every scenario has a row, with numbers or a reason.
    for label in ("N=1 mixed", "N=3 mixed", "N=6 mixed", "2 SM + 2 SSM", "2 Google"):
        assert len(_row(text, label)) > 1
    # Part 4 (its rows share labels with part 2's): as PID 1, no orphan was left behind.
    part4 = text.split("## 4.", 1)[1]
    reaping = _row(part4, "secrets-init, module")
    if unshare_available():
        assert reaping[5] == "0" and reaping[7] == "0", reaping
    else:
        assert "unshare" in reaping[1]

    assert not (tmp_path / "benchmarks.png").exists()
    assert "no chart drawn (--no-chart)" in text


def test_without_matplotlib_the_chart_is_a_note_and_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    note = report.chart(None, tmp_path / "benchmarks.png")  # type: ignore[arg-type]
    assert note.startswith("matplotlib is not installed")
    assert not (tmp_path / "benchmarks.png").exists()


def test_sdk_import_time_counts_only_outermost_third_party_imports() -> None:
    output = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 | secrets_init.cli",
            "import time:       300 |        300 |   jmespath",
            "import time:      1000 |       4000 | boto3",
            "import time:       200 |        200 | json",
            "import time:       500 |       2500 | grpc",
            "secrets-init: info: resolved 2 secret references in 9 ms",
        ]
    )
    assert sdk_import_ms(output) == 6.5


def test_sdk_import_time_counts_sdks_a_provider_module_imports() -> None:
    output = "\n".join(
        [
            "import time:       300 |        300 |     jmespath",
            "import time:      1000 |       4000 |   botocore",
            "import time:        50 |         60 |   json",
            "import time:       100 |       4200 | secrets_init.providers.aws_client",
        ]
    )
    assert sdk_import_ms(output) == 4.0
