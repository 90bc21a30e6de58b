"""Fixtures of the webhook tests: a CA, the small API server and its KUBECONFIG."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.kube_api import FakeApiServer, populated_api
from testing.tls import CertificateAuthority


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def api(ca: CertificateAuthority) -> Iterator[FakeApiServer]:
    with populated_api(ca) as server:
        yield server


@pytest.fixture
def kubeconfig(api: FakeApiServer, ca: CertificateAuthority, tmp_path: Path) -> Path:
    return api.kubeconfig(ca.path, tmp_path / "kubeconfig")
