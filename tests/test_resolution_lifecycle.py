"""What happens around resolution: signals that arrive while secrets are fetched, timeouts,
and the program never starting with half an environment."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from testing.fake_secretmanager import FakeSecretManager, gsm_env
from testing.process import run
from testing.supervised import wait_for
from tests.conftest import Supervise

REF = "gcp:secretmanager:projects/proj-1/secrets/slow"
MODES = [pytest.param(False, id="process"), pytest.param(True, id="pid1", marks=pytest.mark.pid1)]


@pytest.mark.parametrize("pid1", MODES)
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT])
def test_stop_signal_during_resolution_exits_without_starting(
    gsm: FakeSecretManager, supervise: Supervise, tmp_path: Path, pid1: bool, number: int
) -> None:
    gsm.add_secret("proj-1", "slow", b"v")
    gsm.delay = 120.0  # the answer never comes in time: only the signal can end this run
    marker = tmp_path / "started"
    env = gsm_env(gsm, SLOW=REF)
    item = supervise(tmp_path, command=["touch", str(marker)], env=env, pid1=pid1)
    wait_for(lambda: gsm.calls > 0, timeout=20, what="the fetch to begin")
    item.send(number)
    code, _, err = item.finish(timeout=60)
    assert code == 128 + number
    assert not marker.exists()
    assert "not starting the program" in err


@pytest.mark.parametrize("pid1", MODES)
def test_other_signals_during_resolution_reach_the_program_once_it_runs(
    gsm: FakeSecretManager, supervise: Supervise, tmp_path: Path, pid1: bool
) -> None:
    gsm.add_secret("proj-1", "slow", b"v")
    gsm.delay = 0.5
    env = gsm_env(gsm, SLOW=REF)
    item = supervise(tmp_path, command=["sleep", "10"], env=env, pid1=pid1)
    wait_for(lambda: gsm.calls > 0, timeout=20, what="the fetch to begin")
    item.send(signal.SIGUSR1)  # default action of SIGUSR1 kills `sleep`
    code, _, _ = item.finish()
    assert code == 128 + signal.SIGUSR1


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
