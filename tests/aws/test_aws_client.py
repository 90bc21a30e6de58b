"""What secrets-init does when AWS is slow, failing, unreachable or not configured.

Faults come from the proxy in front of moto. Every failure must end the run
with exit status 1, one line per variable, and the program not started.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from testing.aws_proxy import AwsProxy, Fault
from testing.moto import ACCOUNT, Aws, aws_env
from testing.process import run

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/app"


def test_throttling_is_retried_until_it_passes(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("busy", "value-busy")
    aws.parameter("busy", "param-busy")
    proxy.faults = [
        Fault.throttle("BatchGetSecretValue", times=2),
        Fault.throttle("GetParameters", times=3),
    ]
    env = aws_env(proxy.url, SECRET=aws.sm_ref("busy"), PARAM=aws.ssm_ref("busy"))
    result = run(["--log-level", "debug"], env=env, show=["SECRET", "PARAM"])
    assert result.returncode == 0, result.stderr
    assert result.seen == {"SECRET": "value-busy", "PARAM": "param-busy"}
    assert proxy.counts == {"BatchGetSecretValue": 3, "GetParameters": 4}
    assert result.stderr.count("throttled, retrying in") == 5


def test_server_errors_are_retried(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("flaky", "value-flaky")
    aws.parameter("flaky", "param-flaky")
    proxy.faults = [
        Fault.server_error("BatchGetSecretValue", times=1, status=500),
        Fault.server_error("GetParameters", times=2, status=503),
    ]
    env = aws_env(proxy.url, SECRET=aws.sm_ref("flaky"), PARAM=aws.ssm_ref("flaky"))
    result = run(env=env, show=["SECRET", "PARAM"])
    assert result.returncode == 0, result.stderr
    assert result.seen == {"SECRET": "value-flaky", "PARAM": "param-flaky"}
    assert proxy.counts == {"BatchGetSecretValue": 2, "GetParameters": 3}


# How far past --timeout a run may end, at most: the child's start, the SDK's import and
# the report. A loose regression guard (the subprocess's own timeout), not a benchmark.
PAST_THE_TIMEOUT = 5


@pytest.mark.parametrize(
    "fault", [Fault.throttle(), Fault.server_error(status=503)], ids=["throttled", "503"]
)
def test_a_failing_call_is_tried_ten_times_and_no_more(
    aws: Aws, proxy: AwsProxy, fault: Fault
) -> None:
    aws.secret("down", "value-down")
    aws.parameter("down", "param-down")
    proxy.faults = [fault]
    env = aws_env(proxy.url, SECRET=aws.sm_ref("down"), PARAM=aws.ssm_ref("down"))
    # The backoff between ten attempts adds up to 11-22 s: the deadline is not what ends it.
    result = run(["--timeout", "60"], env=env, show=["SECRET"], timeout=60 + PAST_THE_TIMEOUT)
    assert result.returncode == 1 and result.seen is None
    assert proxy.counts == {"BatchGetSecretValue": 10, "GetParameters": 10}
    assert result.errors[0].endswith(" after 10 attempts")


def test_a_dropped_connection_is_tried_three_times_and_no_more(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("gone", "value-gone")
    aws.parameter("gone", "param-gone")
    proxy.faults = [Fault.drop_connection()]
    secret, parameter = aws.sm_ref("gone"), aws.ssm_ref("gone")
    env = aws_env(proxy.url, SECRET=secret, PARAM=parameter)
    result = run(["--timeout", "60"], env=env, show=["SECRET"], timeout=60 + PAST_THE_TIMEOUT)
    assert result.returncode == 1 and result.seen is None
    assert proxy.counts == {"BatchGetSecretValue": 3, "GetParameters": 3}
    assert result.errors[:2] == [
        f"PARAM: {parameter}: cannot reach the endpoint {proxy.url}",
        f"SECRET: {secret}: cannot reach the endpoint {proxy.url}",
    ]


def test_a_server_that_keeps_failing_gives_up_within_the_timeout(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("down", "value-down")
    proxy.faults = [Fault.server_error(status=503)]
    ref = aws.sm_ref("down")
    result = run(
        ["--timeout", "3"],
        env=aws_env(proxy.url, DOWN=ref),
        show=["DOWN"],
        timeout=3 + PAST_THE_TIMEOUT,
    )
    assert result.returncode == 1 and result.seen is None
    [line] = [e for e in result.errors if e.startswith("DOWN:")]
    assert line.startswith(f"DOWN: {ref}: AWS service error (HTTP 503) after ")
    assert 3 <= proxy.counts["BatchGetSecretValue"] < 10


def test_a_hung_endpoint_ends_at_the_deadline(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("stuck", "value-stuck")
    aws.parameter("stuck", "param-stuck")
    proxy.faults = [Fault.hang_up()]
    secret, parameter = aws.sm_ref("stuck"), aws.ssm_ref("stuck")
    env = aws_env(proxy.url, SECRET=secret, PARAM=parameter)
    result = run(
        ["--timeout", "2"], env=env, show=["SECRET", "PARAM"], timeout=2 + PAST_THE_TIMEOUT
    )
    assert result.returncode == 1 and result.seen is None
    assert result.errors[:2] == [
        f"PARAM: {parameter}: timed out after 2s waiting for {proxy.url}",
        f"SECRET: {secret}: timed out after 2s waiting for {proxy.url}",
    ]


def test_calls_for_several_regions_are_in_flight_at_once(aws: Aws, proxy: AwsProxy) -> None:
    regions = ("us-east-1", "eu-west-1", "ap-southeast-2")
    env = aws_env(proxy.url)
    for region in regions:
        aws.secret("near", f"secret-in-{region}", region=region)
        aws.parameter("near", f"param-in-{region}", region=region)
        env[f"SECRET_{region[:2].upper()}"] = aws.sm_ref("near", region=region)
        env[f"PARAM_{region[:2].upper()}"] = aws.ssm_ref("near", region=region)
    proxy.delay = 1.0  # each call is held this long: only overlapping calls meet
    result = run(env=env, show=["SECRET_US", "PARAM_AP"])
    assert result.returncode == 0, result.stderr
    assert result.seen == {
        "SECRET_US": "secret-in-us-east-1",
        "PARAM_AP": "param-in-ap-southeast-2",
    }
    assert proxy.counts == {"BatchGetSecretValue": 3, "GetParameters": 3}
    assert proxy.max_in_flight == 6  # one batch per region and service, all at once


def test_no_credentials(aws: Aws, proxy: AwsProxy) -> None:
    env = aws_env(proxy.url, SECRET=aws.sm_ref("any"), PARAM=aws.ssm_ref("any"))
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    result = run(env=env, show=["SECRET"])
    assert result.returncode == 1 and result.seen is None
    assert result.errors[:2] == [
        f"PARAM: {aws.ssm_ref('any')}: no AWS credentials found (looked in the environment, "
        "the shared config and credentials files, web identity, and ECS and EC2 metadata)",
        f"SECRET: {aws.sm_ref('any')}: no AWS credentials found (looked in the environment, "
        "the shared config and credentials files, web identity, and ECS and EC2 metadata)",
    ]
    assert proxy.counts == {}


def test_credentials_aws_rejects(aws: Aws, proxy: AwsProxy) -> None:
    proxy.faults = [Fault.error("", "UnrecognizedClientException")]
    ref = aws.sm_ref("any")
    result = run(env=aws_env(proxy.url, SECRET=ref), show=["SECRET"])
    assert result.returncode == 1
    assert result.errors[0] == (
        f"SECRET: {ref}: AWS rejected the credentials (UnrecognizedClientException)"
    )


def test_unreachable_endpoint(aws: Aws) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{placeholder.getsockname()[1]}"
    env = aws_env(closed, SECRET=aws.sm_ref("any"), PARAM=aws.ssm_ref("any"))
    result = run(env=env, show=["SECRET"], timeout=30)
    assert result.returncode == 1 and result.seen is None
    assert result.errors[:2] == [
        f"PARAM: {aws.ssm_ref('any')}: cannot reach the endpoint {closed}",
        f"SECRET: {aws.sm_ref('any')}: cannot reach the endpoint {closed}",
    ]


def test_service_specific_endpoint_variables_win(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("routed", "value-routed")
    aws.parameter("routed", "param-routed")
    env = aws_env(
        "http://127.0.0.1:9",  # nothing listens on the discard port: unused if routing works
        AWS_ENDPOINT_URL_SECRETS_MANAGER=proxy.url,
        AWS_ENDPOINT_URL_SSM=proxy.url,
        SECRET=aws.sm_ref("routed"),
        PARAM=aws.ssm_ref("routed"),
    )
    result = run(env=env, show=["SECRET", "PARAM"])
    assert result.returncode == 0, result.stderr
    assert result.seen == {"SECRET": "value-routed", "PARAM": "param-routed"}


def test_every_failure_is_reported_and_nothing_leaks(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("good", '{"user": "good-user-value"}')
    aws.secret("locked", "locked-value")
    aws.parameter("good", "good-param-value", kind="SecureString")
    proxy.faults = [Fault.in_batch("AccessDeniedException", "/locked")]
    env = aws_env(
        proxy.url,
        GOOD=aws.sm_ref("good", tail=":user"),
        GOOD_PARAM=aws.ssm_ref("good"),
        BAD_KEY=aws.sm_ref("good", tail=":nope"),
        LOCKED=aws.sm_ref("locked"),
        NO_SECRET=aws.sm_ref("absent"),
        NO_PARAM=aws.ssm_ref("absent"),
    )
    for level in ("debug", "info"):
        for log_format in ("text", "json"):
            result = run(["--log-level", level, "--log-format", log_format], env=env, show=["GOOD"])
            assert result.returncode == 1 and result.seen is None
            output = result.stdout + result.stderr
            for variable in ("BAD_KEY", "LOCKED", "NO_SECRET", "NO_PARAM"):
                assert f"{variable}: arn:" in output
            assert "4 of 6 secret references failed" in output
            for value in ("good-user-value", "good-param-value", "locked-value", '"user"'):
                assert value not in output
            if log_format == "json":  # the providers' own debug lines included
                assert all(json.loads(line)["level"] for line in result.stderr.splitlines())


def test_web_identity_credentials_like_eks_irsa(aws: Aws, proxy: AwsProxy, tmp_path: Path) -> None:
    """IRSA: AWS_ROLE_ARN + a token file, exchanged at STS (moto's, through the proxy)."""
    aws.secret("irsa", "value-irsa")
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2ln")
    env = aws_env(
        proxy.url,
        AWS_ROLE_ARN=ROLE_ARN,
        AWS_WEB_IDENTITY_TOKEN_FILE=str(token),
        SECRET=aws.sm_ref("irsa"),
    )
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    result = run(env=env, show=["SECRET", "AWS_ROLE_ARN"])
    assert result.returncode == 0, result.stderr
    assert result.seen == {"SECRET": "value-irsa", "AWS_ROLE_ARN": ROLE_ARN}
    assert proxy.counts == {"AssumeRoleWithWebIdentity": 1, "BatchGetSecretValue": 1}

    proxy.reset()
    proxy.faults = [Fault.error("AssumeRoleWithWebIdentity", "AccessDenied", status=403)]
    denied = run(env=env, show=["SECRET"])
    assert denied.returncode == 1 and denied.seen is None
    assert denied.errors[0] == (
        f"SECRET: {aws.sm_ref('irsa')}: cannot get AWS credentials: "
        "AssumeRoleWithWebIdentity failed with AccessDenied"
    )


def test_an_endpoints_credentials_are_never_printed(aws: Aws, proxy: AwsProxy) -> None:
    """AWS_ENDPOINT_URL may carry user:password@; messages name the endpoint without them."""
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{placeholder.getsockname()[1]}"
    hung = proxy.url.removeprefix("http://")
    proxy.faults = [Fault.hang_up()]
    cases = [  # endpoint, what the message says after the reference
        (f"http://user:hunter2@{closed}", f"cannot reach the endpoint http://{closed}"),
        (f"https://user:hunter2@{hung}", f"TLS handshake with https://{hung} failed"),
        (f"http://user:hunter2@{hung}", f"timed out after 2s waiting for http://{hung}"),
    ]
    for endpoint, expected in cases:
        ref = aws.sm_ref("any")
        result = run(
            ["--timeout", "2", "--", "true"], env=aws_env(endpoint, SECRET=ref), timeout=30
        )
        assert result.returncode == 1
        assert result.errors[0] == f"SECRET: {ref}: {expected}"
        assert "hunter2" not in result.stderr and "user:" not in result.stderr
