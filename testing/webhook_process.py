"""The webhook as a real process: `python -m secrets_init.webhook`, HTTPS on loopback."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from testing.kube_api import FakeApiServer
from testing.loopback import free_port, wait_serving
from testing.pods import SECRETS_INIT_IMAGE
from testing.process import ROOT
from testing.tls import CertificateAuthority


class Webhook:
    def __init__(
        self,
        ca: Path,
        cert: Path,
        key: Path,
        env: dict[str, str],
        *args: str,
        root: Path = ROOT,
    ) -> None:
        """`root`: the checkout whose secrets_init runs (the benchmark's earlier build)."""
        self.port = free_port()
        self.context = ssl.create_default_context(cafile=str(ca))
        self.log = Path(str(cert) + f".{self.port}.log")
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(root),
            "LANG": "C.UTF-8",
            "SECRETS_INIT_WEBHOOK_TLS_CERT_FILE": str(cert),
            "SECRETS_INIT_WEBHOOK_TLS_KEY_FILE": str(key),
            "SECRETS_INIT_WEBHOOK_IMAGE": SECRETS_INIT_IMAGE,
            "SECRETS_INIT_WEBHOOK_NAMESPACE": "secrets-init",
            **env,
        }
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "secrets_init.webhook",
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    *args,
                ],
                env=environment,
                cwd=root,  # `-m` puts the working directory first on sys.path, before PYTHONPATH
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_serving(self.process, lambda: self.get("/healthz")[0] == 200, self.log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=30)

    def get(self, path: str) -> tuple[int, str, str]:
        connection = self.connection()
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type", ""), response.read().decode()
        finally:
            connection.close()

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        connection = self.connection()
        try:
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def review(self, review: dict[str, Any]) -> dict[str, Any]:
        status, body = self.post("/mutate", json.dumps(review).encode())
        assert status == 200, body
        answer: dict[str, Any] = json.loads(body)
        assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
        assert answer["response"]["uid"] == review["request"]["uid"]
        response: dict[str, Any] = answer["response"]
        return response

    def metric(self, line_start: str) -> float:
        for line in self.get("/metrics")[2].splitlines():
            if line.startswith(line_start + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        return self.process.returncode


@contextlib.contextmanager
def serving(
    ca: CertificateAuthority,
    api: FakeApiServer,
    directory: Path,
    env: dict[str, str] | None = None,
    *args: str,
    root: Path = ROOT,
) -> Iterator[Webhook]:
    """The webhook with a certificate of `ca`, reading through `api` (KUBECONFIG), trusting
    `ca` for registries too (SSL_CERT_FILE, as a cluster with a private CA does)."""
    directory.mkdir(parents=True, exist_ok=True)
    issued = ca.issue(f"webhook-{free_port()}")
    environment = {
        "KUBECONFIG": str(api.kubeconfig(ca.path, directory / "kubeconfig")),
        "SSL_CERT_FILE": str(ca.path),
        **(env or {}),
    }
    webhook = Webhook(ca.path, issued.cert, issued.key, environment, *args, root=root)
    try:
        yield webhook
    finally:
        webhook.stop()
