"""The webhook as a real HTTPS process with real certificates, and its ConfigMap/Secret reads
going through the Kubernetes client (KUBECONFIG) to the small API server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from testing import pods
from testing.kube_api import FakeApiServer, populated_api
from testing.process import ROOT
from testing.tls import CertificateAuthority
from testing.webhook_process import Webhook, serving
from tests.webhook import shapes
from tests.webhook.checks import assert_valid, patched


@pytest.fixture(scope="module")
def api(ca: CertificateAuthority) -> Iterator[FakeApiServer]:
    """One API server and one webhook for this module's tests: each start costs a second."""
    with populated_api(ca) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_faults(api: FakeApiServer) -> None:
    api.faults.clear()


@pytest.fixture(scope="module")
def webhook(
    ca: CertificateAuthority, api: FakeApiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Webhook]:
    with serving(ca, api, tmp_path_factory.mktemp("webhook")) as running:
        yield running
        assert running.stop() == 0, running.output()


def _needs_registry(pod: dict[str, Any]) -> bool:
    return any(
        not c.get("command") for c in pod["spec"]["containers"] if "env" in c or "envFrom" in c
    )


@pytest.mark.parametrize("shape", sorted(shapes.SHAPES))
def test_pod_shapes_are_injected(webhook: Webhook, shape: str) -> None:
    """Shapes that need the image's ENTRYPOINT are denied here: registry.example does not
    resolve (test_registry.py has a real registry)."""
    original = shapes.SHAPES[shape]
    response = webhook.review(pods.review(original))
    if _needs_registry(original):
        assert response["allowed"] is False
        message = response["status"]["message"]
        assert "registry.example/orders:1.0" in message and "unreachable" in message
        assert "Set `command`" in message
        return
    after = patched(original, response)
    assert after != original
    assert_valid(after)
    assert webhook.review(pods.review(after)) == {"uid": "u-1", "allowed": True}


@pytest.mark.parametrize("shape", sorted(shapes.WITHOUT_REFERENCES))
def test_pods_without_references_are_allowed_unchanged(webhook: Webhook, shape: str) -> None:
    assert webhook.review(pods.review(shapes.WITHOUT_REFERENCES[shape])) == {
        "uid": "u-1",
        "allowed": True,
    }


def test_dry_run(webhook: Webhook) -> None:
    shape = shapes.SHAPES["envFrom-configmap"]
    assert webhook.review(pods.review(shape, dry_run=True)) == webhook.review(pods.review(shape))


@pytest.mark.parametrize("status", [403, 404, 500])
def test_unreadable_objects_inject_with_a_warning(
    webhook: Webhook, api: FakeApiServer, status: int
) -> None:
    name = "missing" if status == 404 else "refs"
    if status != 404:
        api.faults[name] = status
    shape = pods.pod(pods.container(command=["/app"], envFrom=[{"secretRef": {"name": name}}]))
    response = webhook.review(pods.review(shape))
    [warning] = response["warnings"]
    assert f"cannot read Secret {name} (HTTP {status}" in warning
    assert_valid(patched(shape, response))


def test_health_metrics_and_other_paths(webhook: Webhook) -> None:
    assert webhook.get("/healthz")[:2] == (200, "text/plain; charset=utf-8")
    mutated = webhook.metric('secrets_init_webhook_reviews_total{outcome="mutated"}')
    unchanged = webhook.metric('secrets_init_webhook_reviews_total{outcome="unchanged"}')
    count = webhook.metric("secrets_init_webhook_review_duration_seconds_count")
    webhook.review(pods.review(shapes.SHAPES["command-only"]))
    webhook.review(pods.review(shapes.WITHOUT_REFERENCES["no-env"]))
    status, content_type, text = webhook.get("/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert f'secrets_init_webhook_reviews_total{{outcome="mutated"}} {mutated + 1:.0f}' in text
    assert f'secrets_init_webhook_reviews_total{{outcome="unchanged"}} {unchanged + 1:.0f}' in text
    assert f"secrets_init_webhook_review_duration_seconds_count {count + 2:.0f}" in text
    assert (
        f'secrets_init_webhook_review_duration_seconds_bucket{{le="+Inf"}} {count + 2:.0f}' in text
    )
    assert "# TYPE secrets_init_webhook_registry_cache_hits_total counter" in text
    assert webhook.get("/nothing")[0] == 404
    assert webhook.post("/other", b"{}")[0] == 404
    status, body = webhook.post("/mutate", b"not json")
    assert status == 400 and b"not JSON" in body
    status, body = webhook.post(
        "/mutate",
        json.dumps({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1"}).encode(),
    )
    assert status == 400 and b"admission.k8s.io/v1" in body
    assert webhook.metric('secrets_init_webhook_reviews_total{outcome="error"}') == 2


def test_tls_only(webhook: Webhook) -> None:
    with socket.create_connection(("127.0.0.1", webhook.port), timeout=10) as plain:
        plain.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = plain.recv(4096)
    assert b"200" not in answer and b"ok" not in answer
    assert webhook.get("/healthz")[0] == 200  # a bad client does not take the server down


def test_one_connection_many_reviews_and_expect_100_continue(webhook: Webhook) -> None:
    """As the API server talks: keep-alive, each answer whole before the next request; and a
    client that asks `Expect: 100-continue` hears it before it sends the body."""
    body = json.dumps(pods.review(shapes.SHAPES["command-only"])).encode()
    raw = socket.create_connection(("127.0.0.1", webhook.port), timeout=5)
    with webhook.context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        reader = tls.makefile("rb")
        head = f"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        for _ in range(3):
            tls.sendall(f"{head}\r\n".encode() + body)
            assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
            length = 0
            while (line := reader.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                length = int(value) if name.lower() == "content-length" else length
            assert json.loads(reader.read(length))["response"]["allowed"] is True
        tls.sendall(f"{head}Expect: 100-continue\r\n\r\n".encode())
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n"  # before the body is sent
        assert reader.readline() == b"\r\n"
        tls.sendall(body)
        assert reader.readline() == b"HTTP/1.1 200 OK\r\n"


def _serial(webhook: Webhook) -> int:
    raw = socket.create_connection(("127.0.0.1", webhook.port), timeout=10)
    with webhook.context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)

    assert der is not None
    return int(x509.load_der_x509_certificate(der).serial_number)


def test_renewed_certificate_files_are_served_without_a_restart(
    ca: CertificateAuthority, api: FakeApiServer, tmp_path: Path
) -> None:
    """As a Secret volume renews them: a new directory, then the symlinks swapped."""
    first = ca.issue("first")
    live = tmp_path / "live"
    live.mkdir()
    (live / "tls.crt").symlink_to(first.cert)
    (live / "tls.key").symlink_to(first.key)
    kubeconfig = api.kubeconfig(ca.path, tmp_path / "kubeconfig")
    webhook = Webhook(ca.path, live / "tls.crt", live / "tls.key", {"KUBECONFIG": str(kubeconfig)})
    try:
        assert _serial(webhook) == first.serial
        second = ca.issue("second")
        for name, target in (("tls.crt", second.cert), ("tls.key", second.key)):
            (live / f"{name}.new").symlink_to(target)
            os.replace(live / f"{name}.new", live / name)
        assert _serial(webhook) == second.serial
        assert webhook.get("/healthz")[0] == 200
        assert webhook.metric('secrets_init_webhook_certificate_reloads_total{result="ok"}') == 1
        # A half-written renewal (a certificate without its key) keeps the working pair.
        (live / "tls.crt").unlink()
        (live / "tls.crt").symlink_to(ca.issue("third").cert)
        assert _serial(webhook) == second.serial
        assert webhook.metric('secrets_init_webhook_certificate_reloads_total{result="error"}') == 1
    finally:
        assert webhook.stop() == 0, webhook.output()


def test_no_values_in_the_log_even_at_debug(
    ca: CertificateAuthority, api: FakeApiServer, tmp_path: Path
) -> None:
    """Debug lines of the webhook, the Kubernetes client and urllib3 included."""
    with serving(ca, api, tmp_path, {"SECRETS_INIT_WEBHOOK_LOG_LEVEL": "debug"}) as webhook:
        api.faults["plain"] = 500
        for shape in [*shapes.SHAPES.values(), *shapes.WITHOUT_REFERENCES.values()]:
            if all(c.get("command") for c in shape["spec"]["containers"]):
                webhook.review(pods.review(shape))
        assert webhook.stop() == 0
    log = webhook.output()
    assert "review u-1 orders/orders-*: mutated" in log
    assert "/api/v1/namespaces/orders/secrets/refs" in log  # urllib3's debug line: it is on
    for objects in (pods.CONFIG_MAPS, pods.SECRETS):
        for values in objects.values():
            for value in values.values():
                assert value not in log


def test_options_and_their_twins(ca: CertificateAuthority, tmp_path: Path) -> None:
    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "secrets_init.webhook", *args],
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = run("--help")
    assert done.returncode == 0
    for twin in (
        "SECRETS_INIT_WEBHOOK_IMAGE",
        "SECRETS_INIT_WEBHOOK_TLS_CERT_FILE",
        "SECRETS_INIT_WEBHOOK_LISTEN",
    ):
        assert twin in done.stdout
    done = run("--tls-cert-file", "c", "--tls-key-file", "k")
    assert done.returncode == 2 and "--image" in done.stderr
    done = run(
        SECRETS_INIT_WEBHOOK_TLS_CERT_FILE="c",
        SECRETS_INIT_WEBHOOK_TLS_KEY_FILE="k",
        SECRETS_INIT_WEBHOOK_IMAGE="i",
        SECRETS_INIT_WEBHOOK_LISTEN="nowhere",
    )
    assert done.returncode == 2 and "--listen: expected HOST:PORT" in done.stderr
    done = run(
        SECRETS_INIT_WEBHOOK_TLS_CERT_FILE=str(tmp_path / "none.crt"),
        SECRETS_INIT_WEBHOOK_TLS_KEY_FILE="k",
        SECRETS_INIT_WEBHOOK_IMAGE="i",
    )
    assert done.returncode == 1 and "cannot start" in done.stderr and "none.crt" in done.stderr
