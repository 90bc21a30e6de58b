"""Fetching (secrets_init/fetching.py): what a provider that cannot deliver turns into.

A missing SDK, a provider bug and a provider that never returns each become
one error per reference that names it, and never anything a provider said.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Collection, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from secrets_init import fetching, providers
from secrets_init.log import Logger
from secrets_init.references import Reference
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
    references = [Reference(name, f"ref-{name}", "made-up", name) for name in ("A", "B")]
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
