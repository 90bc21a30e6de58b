"""A small HTTPS server that answers the Kubernetes API GETs the webhook makes, and no more.

ConfigMaps and Secrets by namespace and name (Secrets base64-encoded, as the
API returns them), a Status for 404, and a fault status per object name for
the 403 and 500 cases. A bearer token is required, as the API server does.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from testing import pods
from testing.loopback import LoopbackServer, QuietHandler
from testing.tls import CertificateAuthority, Issued

_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/(configmaps|secrets)/([^/?]+)")
TOKEN = "test-service-account-token"  # noqa: S105 (the fake API's, guards nothing)


class FakeApiServer:
    def __init__(self, issued: Issued) -> None:
        self.config_maps: dict[tuple[str, str], dict[str, str]] = {}
        self.secrets: dict[tuple[str, str], tuple[str, dict[str, bytes]]] = {}
        self.faults: dict[str, int] = {}  # object name -> HTTP status
        self.requests: list[str] = []
        self._server = LoopbackServer(_handler(self), issued.server_context())
        self.url = self._server.url

    def __enter__(self) -> FakeApiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()

    def add_config_map(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self.config_maps[(namespace, name)] = data

    def add_secret(
        self, namespace: str, name: str, data: dict[str, bytes], kind: str = "Opaque"
    ) -> None:
        self.secrets[(namespace, name)] = (kind, data)

    def add_pull_secret(self, namespace: str, name: str, docker_config: bytes) -> None:
        """A Secret of type kubernetes.io/dockerconfigjson, as imagePullSecrets name."""
        self.add_secret(
            namespace, name, {".dockerconfigjson": docker_config}, "kubernetes.io/dockerconfigjson"
        )

    def kubeconfig(self, ca: Path, path: Path, token: str = TOKEN) -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "test",
                            "cluster": {"server": self.url, "certificate-authority": str(ca)},
                        }
                    ],
                    "users": [{"name": "webhook", "user": {"token": token}}],
                    "contexts": [
                        {"name": "test", "context": {"cluster": "test", "user": "webhook"}}
                    ],
                    "current-context": "test",
                }
            )
        )
        return path

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        self.requests.append(path)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or token != TOKEN:  # the scheme is case-insensitive
            return _status(401, "Unauthorized", "Unauthorized")
        match = _PATH.match(path)
        if match is None:
            return _status(404, "NotFound", "the server could not find the requested resource")
        namespace, resource, name = match.groups()
        if name in self.faults:
            code = self.faults[name]
            return _status(
                code, "Forbidden" if code == 403 else "InternalError", f"{resource} {name!r}: fault"
            )
        metadata = {"name": name, "namespace": namespace}
        if resource == "configmaps" and (namespace, name) in self.config_maps:
            data = self.config_maps[(namespace, name)]
            return 200, {
                "kind": "ConfigMap",
                "apiVersion": "v1",
                "metadata": metadata,
                "data": data,
            }
        if resource == "secrets" and (namespace, name) in self.secrets:
            kind, raw = self.secrets[(namespace, name)]
            encoded = {k: base64.b64encode(v).decode() for k, v in raw.items()}
            return 200, {
                "kind": "Secret",
                "apiVersion": "v1",
                "metadata": metadata,
                "type": kind,
                "data": encoded,
            }
        return _status(404, "NotFound", f'{resource} "{name}" not found')


def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _handler(api: FakeApiServer) -> type[QuietHandler]:
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_json(*api.answer(self.path, self.headers.get("Authorization")))

    return Handler


@contextlib.contextmanager
def populated_api(ca: CertificateAuthority) -> Iterator[FakeApiServer]:
    """The API server, holding the objects of testing/pods.py in namespace orders."""
    with FakeApiServer(ca.issue("api")) as server:
        for name, data in pods.CONFIG_MAPS.items():
            server.add_config_map("orders", name, data)
        for name, values in pods.SECRETS.items():
            server.add_secret("orders", name, {k: v.encode() for k, v in values.items()})
        yield server
