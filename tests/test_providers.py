"""The provider seam (secrets_init/providers/__init__.py): an SDK is loaded only when needed."""

from __future__ import annotations

import subprocess
import sys

from testing.aws_proxy import AwsProxy
from testing.moto import ACCOUNT, Aws, aws_env
from testing.process import child_env

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
    assert "boto3" in with_reference and "botocore" in with_reference
