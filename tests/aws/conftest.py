"""AWS fixtures: moto on a loopback port, a fault proxy in front, and a way to run secrets-init.

The moto server lives for the whole session; every test names its secrets
and parameters under its own random prefix, so tests never see each other's.
Data is created straight in moto; secrets-init talks through the proxy,
which counts its requests and injects the faults a test asks for.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from tests.aws.emulator import ACCOUNT, DUMMY_CREDENTIALS, LatencyProxy, start_moto
from tests.conftest import Observed, clean_env, secrets_init_argv

# The child program: prints the named variables as JSON (null when unset).
SHOW = "import json, os, sys; json.dump({k: os.environ.get(k) for k in sys.argv[1:]}, sys.stdout)"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    moto = start_moto()
    yield moto.url
    moto.stop()


@pytest.fixture
def proxy(moto_url: str) -> Iterator[LatencyProxy]:
    with LatencyProxy(moto_url) as running:
        yield running


@dataclass
class Aws:
    """Creates secrets and parameters in moto and writes references to them."""

    url: str
    prefix: str

    def client(self, service: str, region: str = "us-east-1") -> Any:
        import boto3

        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def secret(self, name: str, value: str | bytes, region: str = "us-east-1") -> str:
        """Create a secret; returns its full ARN (with AWS's suffix)."""
        key = "SecretBinary" if isinstance(value, bytes) else "SecretString"
        answer = self.client("secretsmanager", region).create_secret(
            Name=f"{self.prefix}/{name}", **{key: value}
        )
        return str(answer["ARN"])

    def new_version(self, name: str, value: str, region: str = "us-east-1") -> str:
        answer = self.client("secretsmanager", region).put_secret_value(
            SecretId=f"{self.prefix}/{name}", SecretString=value
        )
        return str(answer["VersionId"])

    def sm_ref(self, name: str, region: str = "us-east-1", tail: str = "") -> str:
        """A reference by name (no suffix), with `tail` appended (':key', '::AWSPREVIOUS:')."""
        return f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{self.prefix}/{name}{tail}"

    def parameter(
        self, name: str, value: str, kind: str = "String", region: str = "us-east-1"
    ) -> int:
        """Put a parameter (a new version if it exists); returns its version."""
        answer = self.client("ssm", region).put_parameter(
            Name=f"/{self.prefix}/{name}", Value=value, Type=kind, Overwrite=True
        )
        return int(answer["Version"])

    def label(self, name: str, version: int, label: str, region: str = "us-east-1") -> None:
        self.client("ssm", region).label_parameter_version(
            Name=f"/{self.prefix}/{name}", ParameterVersion=version, Labels=[label]
        )

    def ssm_ref(self, name: str, region: str = "us-east-1", selector: str = "") -> str:
        tail = f":{selector}" if selector else ""
        return f"arn:aws:ssm:{region}:{ACCOUNT}:parameter/{self.prefix}/{name}{tail}"


@pytest.fixture
def aws(moto_url: str) -> Aws:
    return Aws(moto_url, f"t{uuid.uuid4().hex[:10]}")


def aws_env(endpoint: str, **extra: str) -> dict[str, str]:
    """A clean environment that reaches AWS only at `endpoint`, with dummy credentials."""
    return clean_env(
        AWS_ENDPOINT_URL=endpoint,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/nonexistent/aws-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
        **DUMMY_CREDENTIALS,
        **extra,
    )


def run(
    env: dict[str, str],
    show: Sequence[str] = (),
    args: Sequence[str] = (),
    command: Sequence[str] | None = None,
    timeout: float = 60,
) -> Observed:
    """Run secrets-init with `env`; by default the program prints the variables `show`."""
    program = [sys.executable, "-c", SHOW, *show] if command is None else list(command)
    done = subprocess.run(
        [*secrets_init_argv(), *args, "--", *program],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seen = json.loads(done.stdout) if command is None and done.stdout.strip() else None
    return Observed(done.returncode, seen, done.stdout, done.stderr)
