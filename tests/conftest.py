"""Fixtures every test directory shares: the local AWS and Google, and what is under test.

The servers and the way to run secrets-init live in testing/ (bench/ and the
demo use them too); this file only gives them pytest lifetimes. What runs is
the module, or the frozen binary given with `--secrets-init-bin PATH`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from testing.aws_proxy import AwsProxy
from testing.fake_secretmanager import FakeSecretManager
from testing.moto import Aws, start_moto
from testing.process import use_binary
from testing.supervised import Supervised


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--secrets-init-bin",
        metavar="PATH",
        help="run this frozen binary instead of `python -m secrets_init`",
    )


def pytest_configure(config: pytest.Config) -> None:
    binary = config.getoption("--secrets-init-bin")
    use_binary(str(Path(binary).resolve()) if binary else None)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto for the whole session; each test names its data under its own prefix."""
    with start_moto() as moto:
        yield moto.url


@pytest.fixture
def proxy(moto_url: str) -> Iterator[AwsProxy]:
    """A fresh proxy in front of moto: secrets-init talks through it, tests count and inject."""
    with AwsProxy(moto_url) as running:
        yield running


@pytest.fixture
def aws(moto_url: str) -> Aws:
    """Creates data straight in moto, under a prefix no other test uses."""
    return Aws(moto_url, f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture
def gsm() -> Iterator[FakeSecretManager]:
    """A fresh fake Google Secret Manager on loopback."""
    with FakeSecretManager() as fake:
        yield fake


class Supervise(Protocol):
    def __call__(self, tmp: Path, **options: Any) -> Supervised: ...


@pytest.fixture
def supervise() -> Iterator[Supervise]:
    """Start a long-running secrets-init to watch (testing.supervised.Supervised's options);
    whatever is left of it is killed at the end of the test."""
    started: list[Supervised] = []

    def start(tmp: Path, **options: Any) -> Supervised:
        item = Supervised(tmp, **options)
        started.append(item)
        return item

    yield start
    for item in started:
        item.kill()
