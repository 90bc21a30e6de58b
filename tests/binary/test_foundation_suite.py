"""The foundation's behaviour tests, run again against dist/secrets-init instead of the module.

Those tests start secrets-init through testing.process, which runs the
binary when pytest is given --secrets-init-bin: so the same
assertions about signals, reaping, exit statuses, PID 1, environment
hygiene and resolution cover the frozen build. Each module runs in its own
pytest process so one failure report names the module it came from.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from testing.process import ROOT, child_env
from tests.binary.conftest import BINARY, require_binary

pytestmark = [pytest.mark.binary, pytest.mark.pid1]

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]
MODULES = [
    "tests/test_supervisor.py",
    "tests/test_cli.py",
    "tests/test_no_leaks.py",
    "tests/test_resolution_lifecycle.py",
    "tests/test_signals.py",
    "tests/test_terminal.py",
    "tests/test_working_directory.py",
    "tests/test_refresh.py",
]


@pytest.mark.parametrize("module", MODULES)
def test_module_passes_against_the_binary(module: str) -> None:
    require_binary()
    if not (ROOT / module).exists():
        pytest.fail(f"{module} is gone: update MODULES")
    done = subprocess.run(
        [*PYTEST, module, f"--secrets-init-bin={BINARY}"],
        cwd=ROOT,
        env=child_env(**({"CI": os.environ["CI"]} if "CI" in os.environ else {})),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
