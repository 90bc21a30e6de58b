"""What happens around resolution: signals that arrive while secrets are fetched, timeouts,
and the program never starting with half an environment."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from testing import process
from testing.fake_secretmanager import FakeSecretManager, gsm_env
from testing.process import run
from testing.supervised import children_of, wait_for

REF = "gcp:secretmanager:projects/proj-1/secrets/slow"
MODES = [pytest.param(False, id="process"), pytest.param(True, id="pid1", marks=pytest.mark.pid1)]


def start(
    fake: FakeSecretManager, command: list[str], pid1: bool
) -> tuple[subprocess.Popen[str], int]:
    argv = [*process.command(), "--", *command]
    proc = subprocess.Popen(
        process.as_pid1(argv) if pid1 else argv,
        env=gsm_env(fake, SLOW=REF),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if pid1:
        wait_for(lambda: children_of(proc.pid), what="PID 1")
        return proc, children_of(proc.pid)[0]
    return proc, proc.pid


@pytest.mark.parametrize("pid1", MODES)
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT])
def test_stop_signal_during_resolution_exits_without_starting(
    gsm: FakeSecretManager, tmp_path: Path, pid1: bool, number: int
) -> None:
    gsm.add_secret("proj-1", "slow", b"v")
    gsm.delay = 120.0  # the answer never comes in time: only the signal can end this run
    marker = tmp_path / "started"
    proc, init = start(gsm, ["touch", str(marker)], pid1)
    wait_for(lambda: gsm.calls > 0, timeout=20, what="the fetch to begin")
    os.kill(init, number)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + number
    assert not marker.exists()
    assert "not starting the program" in err


@pytest.mark.parametrize("pid1", MODES)
def test_other_signals_during_resolution_reach_the_program_once_it_runs(
    gsm: FakeSecretManager, pid1: bool
) -> None:
    gsm.add_secret("proj-1", "slow", b"v")
    gsm.delay = 0.5
    proc, init = start(gsm, ["sleep", "10"], pid1)
    wait_for(lambda: gsm.calls > 0, timeout=20, what="the fetch to begin")
    os.kill(init, signal.SIGUSR1)  # default action of SIGUSR1 kills `sleep`
    proc.communicate(timeout=20)
    assert proc.returncode == 128 + signal.SIGUSR1


def test_timeout_ends_a_hung_resolution_with_a_clear_error(
    gsm: FakeSecretManager, tmp_path: Path
) -> None:
    gsm.add_secret("proj-1", "slow", b"v")
    gsm.delay = 120.0  # only --timeout can end this run before the subprocess guard does
    marker = tmp_path / "started"
    result = run(["--timeout", "1", "--", "touch", str(marker)], env=gsm_env(gsm, SLOW=REF))
    assert result.returncode == 1
    assert not marker.exists()
    assert result.stderr.startswith(f"secrets-init: error: SLOW: {REF}: ")
    assert "time" in result.stderr.splitlines()[0]
