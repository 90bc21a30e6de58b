"""The foundation's behaviour tests, run again against dist/secrets-init instead of the module.

Those tests start secrets-init through tests.conftest.secrets_init_argv(),
which returns the binary when SECRETS_INIT_BIN is set: so the same
assertions about signals, reaping, exit statuses, PID 1, environment
hygiene and resolution cover the frozen build. Each module runs in its own
pytest process so one failure report names the module it came from.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.binary.conftest import BINARY, require_binary
from tests.conftest import ROOT

pytestmark = [pytest.mark.binary, pytest.mark.pid1]

MODULES = [
    "tests/test_supervisor.py",
    "tests/test_cli.py",
    "tests/test_no_leaks.py",
    "tests/test_resolution_lifecycle.py",
]


@pytest.mark.parametrize("module", MODULES)
def test_module_passes_against_the_binary(module: str) -> None:
    require_binary()
    if not (ROOT / module).exists():
        pytest.fail(f"{module} is gone: update MODULES")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", module, "-q", "-p", "no:cacheprovider", "-x"],
        cwd=ROOT,
        env={**os.environ, "SECRETS_INIT_BIN": str(BINARY)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
