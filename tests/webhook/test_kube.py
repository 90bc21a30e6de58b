"""ConfigMap and Secret reads through the real Kubernetes client, to a small API server.

Both ways the webhook finds the API: KUBECONFIG, and the in-cluster service
account (token and CA files, KUBERNETES_SERVICE_HOST/PORT).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from kubernetes.config import incluster_config

from secrets_init.webhook import kube
from secrets_init.webhook.cluster import CONFIG_MAP, SECRET, ReadError
from testing import pods
from testing.kube_api import TOKEN, FakeApiServer
from testing.tls import CertificateAuthority

ALL_VALUES = [
    v for objects in (pods.CONFIG_MAPS, pods.SECRETS) for d in objects.values() for v in d.values()
]


@pytest.fixture
def cluster(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> kube.KubeCluster:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return kube.KubeCluster(kube.configuration(), timeout=5)


def test_reference_families_of_config_maps_and_secrets(
    cluster: kube.KubeCluster, api: FakeApiServer
) -> None:
    assert cluster.reference_families(CONFIG_MAP, "orders", "refs") == {"DB": "aws"}
    assert cluster.reference_families(CONFIG_MAP, "orders", "plain") == {}
    assert cluster.reference_families(SECRET, "orders", "refs") == {"TOKEN": "google"}
    assert cluster.reference_families(SECRET, "orders", "plain") == {}
    assert api.requests == [
        "/api/v1/namespaces/orders/configmaps/refs",
        "/api/v1/namespaces/orders/configmaps/plain",
        "/api/v1/namespaces/orders/secrets/refs",
        "/api/v1/namespaces/orders/secrets/plain",
    ]


def test_a_secret_value_that_is_not_utf8_is_not_a_reference(
    cluster: kube.KubeCluster, api: FakeApiServer
) -> None:
    api.add_secret(
        "orders",
        "binary",
        {"K": b"arn:aws:ssm:us-east-1:1:parameter/\xff", "OK": pods.SSM.encode()},
    )
    assert cluster.reference_families(SECRET, "orders", "binary") == {"OK": "aws"}


@pytest.mark.parametrize(
    ("status", "reason"), [(403, "Forbidden"), (404, "Not Found"), (500, "Internal Server Error")]
)
def test_faults_are_read_errors_with_the_status(
    cluster: kube.KubeCluster, api: FakeApiServer, status: int, reason: str
) -> None:
    name = "refs" if status != 404 else "missing"
    if status != 404:
        api.faults[name] = status
    with pytest.raises(ReadError) as caught:
        cluster.reference_families(SECRET, "orders", name)
    assert caught.value.status == status
    assert str(caught.value) == f"HTTP {status} {reason}"


def test_an_unreachable_api_server(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch, api: FakeApiServer
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    cluster = kube.KubeCluster(kube.configuration(), timeout=2)
    api.__exit__(None, None, None)
    with pytest.raises(ReadError, match="API server unreachable"):
        cluster.reference_families(CONFIG_MAP, "orders", "refs")


def test_the_token_is_sent(
    api: FakeApiServer, ca: CertificateAuthority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "KUBECONFIG", str(api.kubeconfig(ca.path, tmp_path / "wrong", token="wrong"))
    )
    cluster = kube.KubeCluster(kube.configuration(), timeout=5)
    with pytest.raises(ReadError, match="HTTP 401"):
        cluster.reference_families(CONFIG_MAP, "orders", "refs")


def test_in_cluster_service_account(
    api: FakeApiServer, ca: CertificateAuthority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(TOKEN)
    (account / "ca.crt").write_bytes(ca.pem)
    host, port = api.url.removeprefix("https://").split(":")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "does-not-exist"))
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(account / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(account / "ca.crt"))
    cluster = kube.KubeCluster(kube.configuration(), timeout=5)
    assert cluster.reference_families(CONFIG_MAP, "orders", "refs") == {"DB": "aws"}


def test_pull_secrets(cluster: kube.KubeCluster, api: FakeApiServer) -> None:
    config = {"auths": {"registry.example": {"auth": base64.b64encode(b"u:p").decode()}}}
    api.add_secret(
        "orders",
        "pull",
        {".dockerconfigjson": json.dumps(config).encode()},
        "kubernetes.io/dockerconfigjson",
    )
    api.add_secret(
        "orders",
        "legacy",
        {".dockercfg": json.dumps(config["auths"]).encode()},
        "kubernetes.io/dockercfg",
    )
    assert json.loads(cluster.docker_config("orders", "pull")) == config
    assert json.loads(cluster.docker_config("orders", "legacy")) == config
    with pytest.raises(ReadError, match="not a pull secret"):
        cluster.docker_config("orders", "refs")


def test_errors_never_hold_values(cluster: kube.KubeCluster, api: FakeApiServer) -> None:
    api.faults["refs"] = 500
    messages = []
    for kind in (CONFIG_MAP, SECRET):
        for name in ("refs", "plain", "missing"):
            try:
                cluster.reference_families(kind, "orders", name)
            except ReadError as error:
                messages.append(str(error))
    try:
        cluster.docker_config("orders", "plain")
    except ReadError as error:
        messages.append(str(error))
    assert len(messages) == 5
    for value in ALL_VALUES:
        assert not any(value in message for message in messages)
