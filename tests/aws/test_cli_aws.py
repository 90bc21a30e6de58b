"""AWS references through the command line: --check, --expand-json, pass-through, lazy boto3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.aws.conftest import Aws, aws_env, run
from tests.aws.emulator import ACCOUNT, LatencyProxy
from tests.conftest import clean_env, secrets_init_argv

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/my-service-account-role"


def test_check_reports_each_reference_and_runs_nothing(
    aws: Aws, proxy: LatencyProxy, tmp_path: Path
) -> None:
    aws.secret("ok", '{"pw": "check-secret-value"}')
    aws.parameter("ok", "check-param-value", kind="SecureString")
    marker = tmp_path / "ran"
    command = ["sh", "-c", f"touch {marker}"]
    env = aws_env(proxy.url, A_SECRET=aws.sm_ref("ok", tail=":pw"), B_PARAM=aws.ssm_ref("ok"))

    good = run(env, args=["--check"], command=command)
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines() == [
        f"A_SECRET aws-secretsmanager {aws.sm_ref('ok', tail=':pw')} ok",
        f"B_PARAM aws-ssm {aws.ssm_ref('ok')} ok",
    ]

    env["C_MISSING"] = aws.sm_ref("missing")
    env["D_BAD_KEY"] = aws.sm_ref("ok", tail=":nokey")
    bad = run(env, args=["--check"], command=command)
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


def test_check_reports_malformed_references(proxy: LatencyProxy) -> None:
    bad = "arn:aws:secretsmanager:us-east-1::secret:db"
    result = run(aws_env(proxy.url, BAD=bad), args=["--check"], command=["true"])
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"BAD - {bad} error: malformed aws-secretsmanager reference: missing account; "
        "expected arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME"
        "[:JSON-KEY[:VERSION-STAGE[:VERSION-ID]]]"
    ]
    assert proxy.counts == {}


def test_expand_json_makes_one_variable_per_key(aws: Aws, proxy: LatencyProxy) -> None:
    aws.secret("app", json.dumps({"DB_USER": "admin", "DB_PORT": 5432, "DB_OPTS": {"ssl": True}}))
    env = aws_env(proxy.url, APP_CONFIG=aws.sm_ref("app"), KEPT=aws.sm_ref("app", tail=":DB_USER"))
    names = ["APP_CONFIG", "DB_USER", "DB_PORT", "DB_OPTS", "KEPT"]
    plain = run(env, names)
    assert plain.returncode == 0, plain.stderr
    assert plain.seen is not None and plain.seen["DB_USER"] is None
    assert json.loads(plain.seen["APP_CONFIG"] or "") == {
        "DB_USER": "admin",
        "DB_PORT": 5432,
        "DB_OPTS": {"ssl": True},
    }

    for switch in (["--expand-json"], []):
        extra = {} if switch else {"SECRETS_INIT_EXPAND_JSON": "Yes"}
        expanded = run({**env, **extra}, names, args=switch)
        assert expanded.returncode == 0, expanded.stderr
        assert expanded.seen == {
            "APP_CONFIG": None,
            "DB_USER": "admin",
            "DB_PORT": "5432",
            "DB_OPTS": '{"ssl":true}',
            "KEPT": "admin",  # a reference with a JSON key is not expanded
        }


def test_expand_json_collision_names_both_variables(aws: Aws, proxy: LatencyProxy) -> None:
    aws.secret("clash", json.dumps({"HOME_DIR": "x", "PATH": "/evil"}))
    ref = aws.sm_ref("clash")
    result = run(aws_env(proxy.url, CONFIG=ref), ["CONFIG"], args=["--expand-json"])
    assert result.returncode == 1 and result.seen is None
    assert (
        result.errors[0] == f"CONFIG: {ref}: --expand-json: key 'PATH' collides with variable PATH"
    )
    assert "/evil" not in result.stderr


def test_other_arns_pass_through_unchanged(aws: Aws, proxy: LatencyProxy) -> None:
    aws.secret("with-role", "value-with-role")
    others = {
        "AWS_ROLE_ARN": ROLE_ARN,
        "TOPIC": "arn:aws:sns:us-east-1:123456789012:alerts",
        "BUCKET": "arn:aws:s3:::my-bucket",
        "LOOKALIKE": "arn:aws:secretsmanagerx:us-east-1:123456789012:secret:db",
        "NOT_AT_START": " arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
    }
    result = run(aws_env(proxy.url, DB=aws.sm_ref("with-role"), **others), ["DB", *others])
    assert result.returncode == 0, result.stderr
    assert result.seen == {"DB": "value-with-role", **others}


def test_malformed_references_are_errors_not_pass_through(proxy: LatencyProxy) -> None:
    bad = {
        "NO_REGION": f"arn:aws:secretsmanager::{ACCOUNT}:secret:db",
        "NO_NAME": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:",
        "NO_SECRET_PART": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:db",
        "TOO_MANY": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db:k:s:i:extra",
        "SSM_NO_PARAMETER": f"arn:aws:ssm:us-east-1:{ACCOUNT}:document/x",
        "SSM_TOO_MANY": f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/x:1:2",
        "SSM_SHORT_ACCOUNT": "arn:aws:ssm:us-east-1:1234:parameter/x",
    }
    result = run(aws_env(proxy.url, **bad), ["NO_REGION"])
    assert result.returncode == 1 and result.seen is None
    reported = {line.split(":", 1)[0] for line in result.errors if ": arn:" in line}
    assert reported == set(bad)
    assert proxy.counts == {}


def _imports(env: dict[str, str], command: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *secrets_init_argv()[1:], "--", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_boto3_is_imported_only_when_an_aws_reference_is_present(
    aws: Aws, proxy: LatencyProxy
) -> None:
    assert secrets_init_argv()[0] == sys.executable, "runs the module, not the frozen binary"
    # -X importtime is inherited by the forked child, so its imports show too.
    without = _imports(clean_env(AWS_ROLE_ARN=ROLE_ARN), ["true"])
    assert "secrets_init.cli" in without
    assert "boto3" not in without and "botocore" not in without

    aws.secret("lazy", "value-lazy")
    with_reference = _imports(aws_env(proxy.url, DB=aws.sm_ref("lazy")), ["true"])
    assert "boto3" in with_reference and "botocore" in with_reference
