"""Google-only helpers: a metadata server, no credentials at all, a token endpoint, a CONNECT
recorder and a proxy that terminates TLS.

The fake Secret Manager is a shared fixture (`gsm`, tests/conftest.py).
"""

from __future__ import annotations

import json
import select
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.fake_secretmanager import FakeMetadataServer
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
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                length = 0
                while True:
                    line = self.rfile.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                self.rfile.read(length)
                outer.hits += 1
                body = json.dumps(
                    {"access_token": "fake-token", "expires_in": 3600, "token_type": "Bearer"}
                ).encode()
                self.wfile.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class ConnectRecorder:
    """An HTTP proxy that records which host:port a client asks to CONNECT to, then refuses.

    With `HTTPS_PROXY` pointing here, the real (TLS, credentialed) client path
    runs up to the point of leaving the machine, and shows where it would go.
    """

    def __init__(self) -> None:
        self.targets: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request_line = self.rfile.readline().decode("latin-1").split()
                if len(request_line) >= 2 and request_line[0] == "CONNECT":
                    outer.targets.append(request_line[1])
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    yield server
    server.stop()


@pytest.fixture
def connect_recorder() -> Iterator[ConnectRecorder]:
    server = ConnectRecorder()
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
    token) run to the end on loopback. Records each CONNECT target and its
    Proxy-Authorization header.
    """

    def __init__(self, directory: Path, upstream_port: int) -> None:
        self.authority = CertificateAuthority(directory)
        issued = self.authority.issue("google", GOOGLE_ENDPOINTS)
        context = issued.server_context()
        self.targets: list[str] = []
        self.authorizations: list[str | None] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request_line = self.rfile.readline().decode("latin-1").split()
                authorization = None
                while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "proxy-authorization":
                        authorization = value.strip()
                if len(request_line) < 2 or request_line[0] != "CONNECT":
                    self.wfile.write(
                        b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"
                    )
                    return
                outer.targets.append(request_line[1])
                outer.authorizations.append(authorization)
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                try:
                    inside = context.wrap_socket(self.connection, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # the client did not trust the certificate
                with inside, socket.create_connection(("127.0.0.1", upstream_port)) as upstream:
                    relay(inside, upstream)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def relay(inside: ssl.SSLSocket, upstream: socket.socket) -> None:
    """Bytes both ways from one thread (an SSL socket is not shared between threads)."""
    pairs = {inside: upstream, upstream: inside}
    while True:
        ready = [inside] if inside.pending() else select.select(list(pairs), [], [], 30)[0]
        if not ready:
            return
        for source in ready:
            try:
                chunk = source.recv(65536)
            except (ssl.SSLError, OSError):
                return
            if not chunk:
                return
            pairs[source].sendall(chunk)
