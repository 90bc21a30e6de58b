"""The provider seam (secrets_init/providers/__init__.py): an SDK is loaded only when needed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from secrets_init import providers, references
from testing.aws_proxy import AwsProxy
from testing.moto import ACCOUNT, Aws, aws_env
from testing.process import child_env, run

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/my-service-account-role"


def _imports(env: dict[str, str]) -> str:
    """What the module (never the frozen binary) imports, child included, for `-- true`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "secrets_init", "--", "true"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_boto3_is_imported_only_when_an_aws_reference_is_present(aws: Aws, proxy: AwsProxy) -> None:
    # -X importtime is inherited by the forked child, so its imports show too.
    without = _imports(child_env(AWS_ROLE_ARN=ROLE_ARN))
    assert "secrets_init.cli" in without
    assert "boto3" not in without and "botocore" not in without

    aws.secret("lazy", "value-lazy")
    with_reference = _imports(aws_env(proxy.url, DB=aws.sm_ref("lazy")))
    assert "botocore" in with_reference  # botocore straight: boto3 itself is not imported


# -- which ARNs are references: every partition, and never a pass-through ----------------


def test_the_partitions_are_the_ones_botocore_knows() -> None:
    from botocore.loaders import create_loader

    known = {partition["id"] for partition in create_loader().load_data("partitions")["partitions"]}
    assert set(providers.AWS_PARTITIONS) == known


@pytest.mark.parametrize("partition", [*providers.AWS_PARTITIONS, "aws-eu", "", "AWS", "aws-iso-z"])
@pytest.mark.parametrize(
    ("service", "provider"), [("secretsmanager", "aws-secretsmanager"), ("ssm", "aws-ssm")]
)
def test_an_arn_of_any_partition_is_a_reference(
    partition: str, service: str, provider: str
) -> None:
    value = f"arn:{partition}:{service}:us-east-1:{ACCOUNT}:"
    entry = providers.entry_for(value)
    assert entry is not None and entry.name == provider
    assert providers.is_reference(value)


def test_an_unknown_partition_is_refused_by_name() -> None:
    arn = f"arn:aws-eu:secretsmanager:eu-west-1:{ACCOUNT}:secret:db"
    found, malformed = references.scan({b"DB": arn.encode()})
    assert found == []
    assert [str(error) for error in malformed] == [
        f"DB: {arn}: malformed aws-secretsmanager reference: partition must be one of "
        + ", ".join(providers.AWS_PARTITIONS)
    ]


# moto files secrets of aws-iso-e and aws-iso-f regions under the aws partition, so only
# these three are resolved here; the scan above covers the others.
@pytest.mark.parametrize(
    ("partition", "region"),
    [("aws-iso", "us-iso-east-1"), ("aws-iso-b", "us-isob-east-1"), ("aws-eusc", "eusc-de-east-1")],
)
def test_arns_of_other_partitions_are_resolved(
    aws: Aws, proxy: AwsProxy, partition: str, region: str
) -> None:
    aws.secret("db", f"secret-in-{partition}", region=region)
    aws.parameter("db", f"parameter-in-{partition}", region=region)
    env = aws_env(
        proxy.url,
        SECRET=f"arn:{partition}:secretsmanager:{region}:{ACCOUNT}:secret:{aws.prefix}/db",
        PARAMETER=f"arn:{partition}:ssm:{region}:{ACCOUNT}:parameter/{aws.prefix}/db",
        UNKNOWN_PARTITION=f"arn:aws-xyz:ssm:{region}:{ACCOUNT}:parameter/{aws.prefix}/db",
    )
    refused = run(env=env, show=["SECRET"])
    assert refused.returncode == 1 and refused.seen is None
    assert [line.split(":", 1)[0] for line in refused.errors[:-1]] == ["UNKNOWN_PARTITION"]
    del env["UNKNOWN_PARTITION"]
    result = run(env=env, show=["SECRET", "PARAMETER"])
    assert result.returncode == 0, result.stderr
    assert result.seen == {
        "SECRET": f"secret-in-{partition}",
        "PARAMETER": f"parameter-in-{partition}",
    }
