"""`--check` (secrets_init/check.py): one line per reference, the program never run."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from testing import process
from testing.aws_proxy import AwsProxy, Fault
from testing.moto import Aws, aws_env
from testing.process import run
from testing.supervised import wait_for


def test_with_no_references_it_succeeds_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = run(["--check", "--", "touch", str(marker)])
    assert result.returncode == 0
    assert not marker.exists()


def test_check_reports_each_reference_and_runs_nothing(
    aws: Aws, proxy: AwsProxy, tmp_path: Path
) -> None:
    aws.secret("ok", '{"pw": "check-secret-value"}')
    aws.parameter("ok", "check-param-value", kind="SecureString")
    marker = tmp_path / "ran"
    command = ["sh", "-c", f"touch {marker}"]
    env = aws_env(proxy.url, A_SECRET=aws.sm_ref("ok", tail=":pw"), B_PARAM=aws.ssm_ref("ok"))

    good = run(["--check", "--", *command], env=env)
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines() == [
        f"A_SECRET aws-secretsmanager {aws.sm_ref('ok', tail=':pw')} ok",
        f"B_PARAM aws-ssm {aws.ssm_ref('ok')} ok",
    ]

    env["C_MISSING"] = aws.sm_ref("missing")
    env["D_BAD_KEY"] = aws.sm_ref("ok", tail=":nokey")
    bad = run(["--check", "--", *command], env=env)
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [
        f"A_SECRET aws-secretsmanager {aws.sm_ref('ok', tail=':pw')} ok",
        f"B_PARAM aws-ssm {aws.ssm_ref('ok')} ok",
        f"C_MISSING aws-secretsmanager {aws.sm_ref('missing')} error: "
        "secret not found in us-east-1",
        f"D_BAD_KEY aws-secretsmanager {aws.sm_ref('ok', tail=':nokey')} error: "
        "JSON key 'nokey' not found in the secret",
    ]
    for output in (good.stdout + good.stderr, bad.stdout + bad.stderr):
        assert "check-secret-value" not in output and "check-param-value" not in output
    assert not marker.exists()


def test_check_reports_malformed_references(proxy: AwsProxy) -> None:
    bad = "arn:aws:secretsmanager:us-east-1::secret:db"
    result = run(["--check", "--", "true"], env=aws_env(proxy.url, BAD=bad))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"BAD - {bad} error: malformed aws-secretsmanager reference: missing account; "
        "expected arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME"
        "[:JSON-KEY[:VERSION-STAGE[:VERSION-ID]]]"
    ]
    assert proxy.counts == {}


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_check_at_once(aws: Aws, proxy: AwsProxy, number: int) -> None:
    """As it stops a run that is still resolving: not after --timeout."""
    proxy.faults.append(Fault.hang_up())
    env = aws_env(proxy.url, STUCK=aws.sm_ref("stuck"))
    check = subprocess.Popen(
        [*process.command(), "--check", "--timeout", "300", "--", "true"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: proxy.total_calls() > 0, timeout=30, what="the check's first call")
        check.send_signal(number)
        _, stderr = check.communicate(timeout=30)  # not the 300 s of --timeout
    finally:
        check.kill()
        check.wait()
    assert check.returncode == 128 + number, stderr
    assert f"received {signal.Signals(number).name} while checking" in stderr.decode()
