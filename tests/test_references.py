"""Finding references in the environment (secrets_init/references.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secrets_init import references
from secrets_init.references import ResolutionError
from testing.aws_proxy import AwsProxy
from testing.moto import ACCOUNT, Aws, aws_env
from testing.process import run

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/my-service-account-role"


def test_only_values_starting_with_a_prefix_are_references() -> None:
    env = {
        b"A": b"prefix gcp:secretmanager:x",
        b"B": b"arn:aws:iam::123456789012:role/x",
        b"C": b"\xff\xfe",
        b"D": b"arn:aws:s3:::bucket",
    }
    assert references.scan(env) == ([], [])


@given(st.dictionaries(st.binary(min_size=1, max_size=20), st.binary(max_size=200), max_size=10))
def test_scan_never_crashes_on_arbitrary_environments(env: dict[bytes, bytes]) -> None:
    found, malformed = references.scan(env)
    assert all(isinstance(e, ResolutionError) for e in malformed)
    if not malformed:
        for reference in found:
            assert env[reference.variable.encode("utf-8", "surrogateescape")].startswith(
                reference.text.encode()
            )


def test_destination_suffix_is_parsed_and_checked() -> None:
    entry = references.providers.REGISTRY[0]
    with pytest.raises(ResolutionError) as relative:
        references.parse_one("V", "arn:aws:secretsmanager:r:1:secret:x?destination=rel/path", entry)
    assert relative.value.variable == "V"
    assert "absolute path" in str(relative.value)
    with pytest.raises(ResolutionError):
        references.parse_one("V", "arn:aws:secretsmanager:r:1:secret:x?other=1", entry)


def test_every_provider_prefix_passes_pid1s_first_look() -> None:
    from secrets_init.candidates import SCHEMES

    for entry in references.providers.REGISTRY:
        for prefix in entry.prefixes:
            assert prefix.encode().startswith(SCHEMES), prefix


# -- end to end, against moto --------------------------------------------------


def test_other_arns_pass_through_unchanged(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("with-role", "value-with-role")
    others = {
        "AWS_ROLE_ARN": ROLE_ARN,
        "TOPIC": "arn:aws:sns:us-east-1:123456789012:alerts",
        "BUCKET": "arn:aws:s3:::my-bucket",
        "LOOKALIKE": "arn:aws:secretsmanagerx:us-east-1:123456789012:secret:db",
        "NOT_AT_START": " arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
    }
    result = run(env=aws_env(proxy.url, DB=aws.sm_ref("with-role"), **others), show=["DB", *others])
    assert result.returncode == 0, result.stderr
    assert result.seen == {"DB": "value-with-role", **others}


def test_malformed_references_are_errors_not_pass_through(proxy: AwsProxy) -> None:
    bad = {
        "NO_REGION": f"arn:aws:secretsmanager::{ACCOUNT}:secret:db",
        "NO_NAME": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:",
        "NO_SECRET_PART": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:db",
        "TOO_MANY": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db:k:s:i:extra",
        "SSM_NO_PARAMETER": f"arn:aws:ssm:us-east-1:{ACCOUNT}:document/x",
        "SSM_TOO_MANY": f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/x:1:2",
        "SSM_SHORT_ACCOUNT": "arn:aws:ssm:us-east-1:1234:parameter/x",
    }
    result = run(env=aws_env(proxy.url, **bad), show=["NO_REGION"])
    assert result.returncode == 1 and result.seen is None
    reported = {line.split(":", 1)[0] for line in result.errors if ": arn:" in line}
    assert reported == set(bad)
    assert proxy.counts == {}
