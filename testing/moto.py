"""A local AWS: moto's server in a process of its own, and what tests put in it.

    with start_moto() as moto:
        data = Aws(moto.url, prefix="t1")
        arn = data.secret("db", "hunter2")  # created straight in moto
        env = aws_env(moto.url, DB=arn)  # an environment for secrets-init

moto runs in its own process so its work does not compete with the proxy's
or a benchmark's for this process's GIL. As a program it serves until
interrupted, for trying secrets-init by hand:

    python -m testing.moto [--delay S] [--secret NAME=VALUE] [--parameter /NAME=VALUE]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from testing.aws_proxy import AwsProxy
from testing.process import child_env

ACCOUNT = "123456789012"  # moto's default account
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass
class Moto:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> Moto:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start_moto(host: str = "127.0.0.1", timeout: float = 60) -> Moto:
    """moto's server on a free port of `host`, answering once this returns."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
        env=child_env(),  # no MOTO_* or AWS_* settings of the developer's
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_end_with_parent,
    )
    moto = Moto(f"http://{host}:{port}", process)
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 1):
            return moto
        if process.poll() is not None or time.monotonic() > deadline:
            moto.stop()
            raise RuntimeError(f"moto's server did not start on {host}:{port}")
        time.sleep(0.1)


def _end_with_parent() -> None:
    """In moto's process before exec: a test run that is killed takes its moto with it."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def client(url: str, service: str, region: str = "us-east-1") -> Any:
    """A boto3 client straight to moto (for creating data, not for what is under test)."""
    import boto3

    return boto3.client(
        service,
        region_name=region,
        endpoint_url=url,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


@dataclass
class Aws:
    """Creates secrets and parameters in moto under `prefix`, and writes references to them."""

    url: str
    prefix: str

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return client(self.url, service, region)

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


def aws_env(endpoint: str, **extra: str) -> dict[str, str]:
    """A clean environment that reaches AWS only at `endpoint`, with dummy credentials."""
    return child_env(
        AWS_ENDPOINT_URL=endpoint,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/nonexistent/aws-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
        **DUMMY_CREDENTIALS,
        **extra,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run moto (behind the proxy when --delay is given) until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m testing.moto", description=main.__doc__)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to each request")
    parser.add_argument("--secret", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--parameter", action="append", default=[], metavar="/NAME=VALUE")
    args = parser.parse_args(argv)
    with start_moto() as moto, AwsProxy(moto.url, delay=args.delay) as proxy:
        secrets = client(moto.url, "secretsmanager", args.region)
        ssm = client(moto.url, "ssm", args.region)
        print(f"AWS_ENDPOINT_URL={proxy.url if args.delay else moto.url}", flush=True)
        for item in args.secret:
            name, _, value = item.partition("=")
            print(secrets.create_secret(Name=name, SecretString=value)["ARN"], flush=True)
        for item in args.parameter:
            name, _, value = item.partition("=")
            ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
            print(f"arn:aws:ssm:{args.region}:{ACCOUNT}:parameter{name}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
