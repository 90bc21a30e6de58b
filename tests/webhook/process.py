"""The webhook as a real process: `python -m secrets_init.webhook`, HTTPS on loopback."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.webhook.pods import ROOT

IMAGE = "registry.example/secrets-init:0.1.0"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Webhook:
    def __init__(self, ca: Path, cert: Path, key: Path, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.context = ssl.create_default_context(cafile=str(ca))
        self.log = Path(str(cert) + f".{self.port}.log")
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "LANG": "C.UTF-8",
            "SECRETS_INIT_WEBHOOK_TLS_CERT_FILE": str(cert),
            "SECRETS_INIT_WEBHOOK_TLS_KEY_FILE": str(key),
            "SECRETS_INIT_WEBHOOK_IMAGE": IMAGE,
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
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the webhook exited {self.process.returncode}:\n{self.output()}"
                )
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the webhook never answered /healthz:\n{self.output()}")
            time.sleep(0.05)

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
