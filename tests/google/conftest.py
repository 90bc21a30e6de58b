"""Fixtures for Google references: the fake service, and secrets-init run against it."""

from __future__ import annotations

import json
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.conftest import Observed, clean_env, secrets_init_argv
from tests.google.fake_secretmanager import FakeMetadataServer, FakeSecretManager

PROJECT = "my-project"

# The program secrets-init starts: it writes the variables it was asked about
# to a file, so "the program was not started" is "the file does not exist".
_SHOW_ENV = (
    "import json, os, sys\n"
    "seen = {name: os.environ.get(name) for name in sys.argv[2:]}\n"
    "open(sys.argv[1], 'w').write(json.dumps(seen))\n"
)


@pytest.fixture
def fake() -> Iterator[FakeSecretManager]:
    server = FakeSecretManager()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def metadata_server() -> Iterator[FakeMetadataServer]:
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
    env = clean_env(
        HOME=str(tmp_path),
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
        GCE_METADATA_HOST=nothing,
        GCE_METADATA_IP=nothing,
        GCE_METADATA_DETECT_RETRIES="1",
    )
    env.update(extra)
    return env


def run_secrets_init(
    tmp_path: Path,
    variables: dict[str, str],
    *,
    fake: FakeSecretManager | None = None,
    options: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> Observed:
    """Run secrets-init as a real process with `variables` set; report what its program saw."""
    full_env = dict(env) if env is not None else clean_env(HOME=str(tmp_path))
    if fake is not None:
        full_env["SECRETMANAGER_EMULATOR_HOST"] = fake.address
    full_env.update(variables)
    seen = tmp_path / "seen.json"
    seen.unlink(missing_ok=True)
    argv = [*secrets_init_argv(), *options]
    if "--check" not in options:
        argv += ["--", sys.executable, "-c", _SHOW_ENV, str(seen), *variables]
    done = subprocess.run(
        argv, env=full_env, capture_output=True, text=True, timeout=timeout, check=False
    )
    program_env = json.loads(seen.read_text()) if seen.exists() else None
    return Observed(done.returncode, program_env, done.stdout, done.stderr)


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
    """An HTTP proxy that records which host:port gRPC asks to CONNECT to, then refuses.

    With `grpc_proxy` pointing here, the real (TLS, credentialed) client path
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
