"""Fixtures of the webhook tests: a CA, the small API server, the webhook process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.webhook import pods
from tests.webhook.fake_api import FakeApiServer
from tests.webhook.tls import CertificateAuthority


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@contextlib.contextmanager
def populated_api(ca: CertificateAuthority) -> Iterator[FakeApiServer]:
    """The API server, holding the objects of tests/webhook/pods.py in namespace orders."""
    with FakeApiServer(ca.issue("api")) as server:
        for name, data in pods.CONFIG_MAPS.items():
            server.add_config_map("orders", name, data)
        for name, values in pods.SECRETS.items():
            server.add_secret("orders", name, {k: v.encode() for k, v in values.items()})
        yield server


@pytest.fixture
def api(ca: CertificateAuthority) -> Iterator[FakeApiServer]:
    with populated_api(ca) as server:
        yield server


@pytest.fixture
def kubeconfig(api: FakeApiServer, ca: CertificateAuthority, tmp_path: Path) -> Path:
    return api.kubeconfig(ca.path, tmp_path / "kubeconfig")
