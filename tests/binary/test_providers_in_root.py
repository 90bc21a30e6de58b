"""Secrets resolved by the frozen SDKs inside an empty root, against the local emulators.

This is where a missing botocore model, CA bundle, shared library or
dist-info would show: the root has nothing but the binary and busybox. The
chroot shares the host's network, so the emulators on 127.0.0.1 are reachable.
"""

from __future__ import annotations

import pytest

from testing.fake_secretmanager import FakeSecretManager
from testing.moto import DUMMY_CREDENTIALS, Aws
from tests.binary.conftest import EmptyRoot

pytestmark = [pytest.mark.binary, pytest.mark.pid1]

PROJECT = "my-project"
SHOW = ["/bin/sh", "-c", 'echo "[$FIRST] [$SECOND]"']


def test_aws_secrets_manager_and_parameter_store(empty_root: EmptyRoot, aws: Aws) -> None:
    aws.secret("db", '{"user": "app", "password": "s3cret in a root"}')
    aws.parameter("flag", "on")
    env = {
        "AWS_ENDPOINT_URL": aws.url,
        "AWS_EC2_METADATA_DISABLED": "true",
        **DUMMY_CREDENTIALS,
        "FIRST": aws.sm_ref("db", tail=":password"),
        "SECOND": aws.ssm_ref("flag"),
    }
    done = empty_root.run(["/secrets-init", "--", *SHOW], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[s3cret in a root] [on]"


def test_google_secret_manager(empty_root: EmptyRoot, gsm: FakeSecretManager) -> None:
    gsm.add_secret(PROJECT, "api-key", "g-value in a root")
    gsm.add_secret(PROJECT, "other", "second")
    env = {
        "SECRETMANAGER_EMULATOR_HOST": gsm.address,
        "FIRST": f"gcp:secretmanager:projects/{PROJECT}/secrets/api-key",
        "SECOND": f"gcp:secretmanager:projects/{PROJECT}/secrets/other/versions/1",
    }
    done = empty_root.run(["/secrets-init", "--", *SHOW], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[g-value in a root] [second]"


def test_a_failure_names_the_variable_and_starts_nothing(
    empty_root: EmptyRoot,
    aws: Aws,
) -> None:
    env = {
        "AWS_ENDPOINT_URL": aws.url,
        "AWS_EC2_METADATA_DISABLED": "true",
        **DUMMY_CREDENTIALS,
        "FIRST": aws.sm_ref("missing"),
    }
    done = empty_root.run(["/secrets-init", "--", *SHOW], env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "FIRST: " in done.stderr
