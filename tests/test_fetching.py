"""Fetching (secrets_init/fetching.py): what a provider that cannot deliver turns into.

A missing SDK, a provider bug and a provider that never returns each become
one error per reference that names it, and never anything a provider said.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Collection, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from secrets_init import fetching, providers
from secrets_init.log import Logger
from secrets_init.references import Reference
from testing.aws_proxy import AwsProxy
from testing.fake_secretmanager import FakeSecretManager
from testing.moto import Aws, aws_env
from testing.process import binary, child_env, run

ACCOUNT = "123456789012"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db"
PARAMETER = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/app/db"
GOOGLE = "gcp:secretmanager:projects/my-project/secrets/db"

# Installed through sitecustomize in the process under test: as if neither
# boto3 nor google-cloud-secret-manager had been installed.
NO_SDKS = """
import sys


class NoSdks:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("boto3", "botocore", "grpc") or name.startswith("google"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoSdks())
"""


def without_sdks(tmp_path: Path, **variables: str) -> dict[str, str]:
    if binary() is not None:
        pytest.skip("the frozen binary carries its SDKs")
    (tmp_path / "sitecustomize.py").write_text(NO_SDKS)
    env = child_env(**variables)
    env["PYTHONPATH"] = os.pathsep.join((str(tmp_path), env["PYTHONPATH"]))
    return env


def test_without_sdks_each_reference_says_which_sdk_is_missing(tmp_path: Path) -> None:
    variables = {"GOOGLE": GOOGLE, "PARAMETER": PARAMETER, "SECRET": SECRET}
    result = run(env=without_sdks(tmp_path, **variables), show=variables)
    assert result.seen is None
    assert result.returncode == 1
    assert result.errors[:3] == [
        f"GOOGLE: {GOOGLE}: the google provider needs google, which is not installed "
        "(pip install 'secrets-init[google]')",
        f"PARAMETER: {PARAMETER}: the aws-ssm provider needs boto3, which is not installed "
        "(pip install 'secrets-init[aws]')",
        f"SECRET: {SECRET}: the aws-secretsmanager provider needs boto3, which is not installed "
        "(pip install 'secrets-init[aws]')",
    ]


def test_without_sdks_a_malformed_reference_is_still_found(tmp_path: Path) -> None:
    bad = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter//app"
    result = run(env=without_sdks(tmp_path, BAD=bad, SECRET=SECRET), show=["BAD"])
    assert result.seen is None
    assert result.returncode == 1
    assert result.errors[0] == (
        f"BAD: {bad}: malformed aws-ssm reference: "
        "empty part in the parameter name ('//' or a trailing '/')"
    )


# -- in-process, with a provider made for the test ---------------------------------------


@dataclass(frozen=True)
class Entry:
    """Stands in for a `providers.ProviderEntry` whose fetch module is `fetcher`."""

    fetcher_module: object
    family: str = "test"

    def fetcher(self) -> object:
        return self.fetcher_module


class Broken:
    @staticmethod
    def fetch(targets: Collection[Hashable], context: providers.FetchContext) -> None:
        raise RuntimeError("s3cr3t quoted from a response")


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def fetch_with(monkeypatch: pytest.MonkeyPatch, fetcher: object, timeout: float = 30) -> list[str]:
    monkeypatch.setattr(providers, "by_name", lambda name: Entry(fetcher))
    context = providers.FetchContext(time.monotonic() + timeout, timeout, Logger("error"))
    references = [Reference(name.encode(), f"ref-{name}", "made-up", name) for name in ("A", "B")]
    fetched, errors = fetching.fetch_all(references, context)
    assert fetched == []
    return [str(error) for error in errors]


def test_a_provider_that_raises_fails_its_references_by_exception_type_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert fetch_with(monkeypatch, Broken) == [
        "A: ref-A: unexpected RuntimeError in the made-up provider",
        "B: ref-B: unexpected RuntimeError in the made-up provider",
    ]


def test_a_provider_that_never_returns_times_out(
    monkeypatch: pytest.MonkeyPatch, release: threading.Event
) -> None:
    class Stuck:
        @staticmethod
        def fetch(targets: Collection[Hashable], context: providers.FetchContext) -> None:
            release.wait()

    assert fetch_with(monkeypatch, Stuck, timeout=0.2) == [
        "A: ref-A: timed out after 0.2s",
        "B: ref-B: timed out after 0.2s",
    ]


# -- stderr is secrets-init's own ------------------------------------------------


def foreign_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("secrets-init:")]


def test_with_both_providers_stderr_carries_only_secrets_inits_lines(
    aws: Aws, proxy: AwsProxy, gsm: FakeSecretManager
) -> None:
    """Both providers import their SDKs at once; a warning one of them silences must stay
    silent (urllib3's DependencyWarning about SOCKS came through, now and then)."""
    arn = aws.secret("both", "aws-value")
    gsm.add_secret("my-project", "db", "google-value")
    env = aws_env(proxy.url, SECRETMANAGER_EMULATOR_HOST=gsm.address, A=arn, G=GOOGLE)
    for _ in range(20):
        result = run(env=env, show=["A", "G"])
        assert result.returncode == 0, result.stderr
        assert result.seen == {"A": "aws-value", "G": "google-value"}
        assert foreign_lines(result.stderr) == []


def test_an_sdk_warning_never_reaches_stderr(tmp_path: Path) -> None:
    """google-auth warns (UserWarning) whenever it finds gcloud's own user credentials."""
    from google.auth import _cloud_sdk

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{probe.getsockname()[1]}"  # closed once the probe is
    gcloud = tmp_path / "gcloud"
    gcloud.mkdir()
    (gcloud / "application_default_credentials.json").write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": _cloud_sdk.CLOUD_SDK_CLIENT_ID,
                "client_secret": "not-a-secret",
                "refresh_token": "not-a-token",
                "token_uri": f"http://{nowhere}/token",
            }
        )
    )
    env = child_env(
        CLOUDSDK_CONFIG=str(gcloud), GCE_METADATA_HOST=nowhere, GCE_METADATA_IP=nowhere, G=GOOGLE
    )
    result = run(["--", "true"], env=env)
    assert result.returncode == 1
    assert result.errors[0] == f"G: {GOOGLE}: could not reach Google to get an access token"
    assert foreign_lines(result.stderr) == []
