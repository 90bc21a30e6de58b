"""Servers on loopback: the one in-process HTTP(S) server of the small stand-ins (the
Kubernetes API, a registry's token service, the GCE metadata server), so each says only what
it answers; a free port and a wait for server processes (the webhook, docker-registry); and
a relay of bytes between two sockets (proxies and the fake Secret Manager's gRPC face).

The in-process server runs a thread per connection, daemon threads (a stuck
client never holds up the end of a test), and writes no access log on stderr.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_serving(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], log: Path, seconds: float = 30
) -> None:
    """Until `ready()` (which may raise OSError while the port is closed); a process that
    exits or never gets ready fails with its log."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise AssertionError(
                f"{process.args!r} exited {process.returncode}:\n{log.read_text(errors='replace')}"
            )
        try:
            if ready():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{process.args!r} never answered:\n{log.read_text(errors='replace')}"
            )
        time.sleep(0.05)


def relay(one: socket.socket, other: socket.socket, idle: float | None = None) -> None:
    """Bytes both ways until either side closes, or for `idle` seconds neither sends.

    From one thread, since an SSL socket must not be read and written from two;
    bytes OpenSSL has already decrypted are read before waiting on the sockets.
    """
    peers = {one: other, other: one}
    while True:
        decrypted = [s for s in peers if isinstance(s, ssl.SSLSocket) and s.pending()]
        ready = decrypted or select.select(list(peers), [], [], idle)[0]
        if not ready:
            return
        for source in ready:
            try:
                chunk = source.recv(65536)
                if not chunk:
                    return
                peers[source].sendall(chunk)
            except OSError:  # ssl.SSLError included
                return


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that answers whole bodies and logs nothing."""

    def send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, document: Any) -> None:
        self.send(status, json.dumps(document).encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer:
    """Serves `handler` on 127.0.0.1 from construction until `close`; HTTPS with `context`."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext | None = None
    ) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        if context is not None:
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        self.url = f"{'https' if context else 'http'}://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
