"""Google-only helpers: a metadata server, no credentials at all, a token endpoint, and a
CONNECT proxy that terminates TLS (or refuses).

The fake Secret Manager is a shared fixture (`gsm`, tests/conftest.py).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.fake_secretmanager import FakeMetadataServer
from testing.loopback import LoopbackServer, QuietHandler, free_port, relay
from testing.process import child_env
from testing.tls import CertificateAuthority

PROJECT = "my-project"


@pytest.fixture
def metadata_server() -> Iterator[FakeMetadataServer]:
    """The GCE metadata server, answering that this machine is in PROJECT."""
    server = FakeMetadataServer(PROJECT)
    server.start()
    yield server
    server.stop()


def closed_port() -> int:
    """A loopback port with nothing listening: connections are refused at once."""
    return free_port()


def offline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No Google credentials and no metadata server, deterministically and at once.

    google-auth looks at GOOGLE_APPLICATION_CREDENTIALS, gcloud's config
    directory and the metadata server; each is pointed at nothing.
    """
    nothing = f"127.0.0.1:{closed_port()}"
    env = child_env(
        HOME=str(tmp_path),
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
        GCE_METADATA_HOST=nothing,
        GCE_METADATA_IP=nothing,
        GCE_METADATA_DETECT_RETRIES="1",
    )
    env.update(extra)
    return env


class TokenServer:
    """An OAuth token endpoint on loopback, for credentials files whose token_uri points here."""

    def __init__(self) -> None:
        self.hits = 0
        outer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.hits += 1
                token = {"access_token": "fake-token", "expires_in": 3600, "token_type": "Bearer"}
                self.send_json(200, token)

        self._server = LoopbackServer(Handler)
        self.url = f"{self._server.url}/token"

    def stop(self) -> None:
        self._server.close()


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    yield server
    server.stop()


# The names Google's endpoints answer to, on the intercepting proxy's certificate.
GOOGLE_ENDPOINTS = (
    "secretmanager.googleapis.com",
    "secretmanager.europe-west4.rep.googleapis.com",
)


class InterceptingProxy:
    """A CONNECT proxy that terminates TLS with its own CA's certificate for Google's
    endpoints and relays the plain HTTP inside to the fake Secret Manager.

    That is what a TLS-inspecting corporate proxy does, and it lets the real
    path (HTTPS to secretmanager.googleapis.com, certificate checked, bearer
    token) run to the end on loopback. Without an upstream it refuses every
    CONNECT (403): the path then runs up to the point of leaving the machine,
    and shows where it would go. Records each CONNECT target and its
    Proxy-Authorization header.
    """

    def __init__(self, directory: Path, upstream_port: int | None) -> None:
        self.authority = CertificateAuthority(directory)
        context = self.authority.issue("google", GOOGLE_ENDPOINTS).server_context()
        self.targets: list[str] = []
        self.authorizations: list[str | None] = []
        outer = self

        class Handler(QuietHandler):
            def do_CONNECT(self) -> None:
                outer.targets.append(self.path)
                outer.authorizations.append(self.headers.get("Proxy-Authorization"))
                if upstream_port is None:
                    self.send(403, b"", "text/plain")
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                self.close_connection = True
                try:
                    inside = context.wrap_socket(self.connection, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # the client did not trust the certificate
                with inside, socket.create_connection(("127.0.0.1", upstream_port)) as upstream:
                    relay(inside, upstream, idle=30)

        self._server = LoopbackServer(Handler)
        self.url = self._server.url

    def stop(self) -> None:
        self._server.close()
