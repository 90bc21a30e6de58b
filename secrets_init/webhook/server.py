"""HTTPS only: POST /mutate, GET /healthz, GET /metrics.

A thread per connection (the API server keeps its connections open, so that
is a handful of threads). The TLS handshake happens in the connection's own
thread with the context of the moment, which is how a renewed certificate is
picked up without a restart and a slow client never holds up the others.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from secrets_init.webhook import review
from secrets_init.webhook.certificates import Certificates
from secrets_init.webhook.metrics import CONTENT_TYPE, Metrics
from secrets_init.webhook.mutate import Mutator

_log = logging.getLogger("secrets_init.webhook")

MAX_BODY = 8 * 2**20  # the API server's own limit on an object is 3 MiB
IDLE_SECONDS = 60.0
ERROR = "error"  # reviews that could not be answered, as /metrics counts them


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        certificates: Certificates,
        mutator: Mutator,
        metrics: Metrics,
    ) -> None:
        self.certificates = certificates
        self.mutator = mutator
        self.metrics = metrics
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        raw, address = self.socket.accept()
        tls = self.certificates.context().wrap_socket(
            raw, server_side=True, do_handshake_on_connect=False
        )
        return tls, address


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the API server reuses connections
    timeout = IDLE_SECONDS
    disable_nagle_algorithm = True  # a held-back last segment costs a 40 ms delayed ACK
    # Headers and body leave in one TLS record and one send (handle_one_request flushes),
    # not a send for each.
    wbufsize = 64 * 1024
    server: WebhookServer
    server_version = "secrets-init-webhook"

    def setup(self) -> None:
        super().setup()
        try:
            self.request.do_handshake()
        except (OSError, ssl.SSLError) as error:
            _log.debug("TLS handshake with %s failed: %s", self.client_address[0], error)
            self.close_connection = True
            self.handshake_failed = True
        else:
            self.handshake_failed = False

    def handle(self) -> None:
        if not self.handshake_failed:
            super().handle()

    def handle_expect_100(self) -> bool:
        answered = super().handle_expect_100()
        self.wfile.flush()  # the client waits for it before it sends the body
        return answered

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        elif self.path == "/metrics":
            self._send(200, self.server.metrics.render().encode(), CONTENT_TYPE)
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/mutate":
            self._send(404, b"not found\n", "text/plain; charset=utf-8")
            return
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            self._send(413 if length else 411, b"bad length\n", "text/plain; charset=utf-8")
            return
        body = self.rfile.read(length)
        try:
            request = review.parse(body)
        except review.ReviewError as error:
            self.server.metrics.review(ERROR, time.perf_counter() - started)
            self._send(400, f"{error}\n".encode(), "text/plain; charset=utf-8")
            return
        try:
            decision = self.server.mutator.decide(request)
        except Exception:  # noqa: BLE001 (answer, so the API server shows a reason)
            _log.exception("review %s failed", request.uid)
            answer, outcome = review.deny(request, "secrets-init-webhook: internal error"), ERROR
        else:
            answer, outcome = decision.response, decision.outcome
        elapsed = time.perf_counter() - started
        self.server.metrics.review(outcome, elapsed)
        _log.info(
            "review %s %s/%s: %s in %.1f ms%s",
            request.uid,
            request.namespace,
            _pod_name(request.pod),
            outcome,
            elapsed * 1000,
            " (dry run)" if request.dry_run else "",
        )
        self._send(200, json.dumps(answer).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.client_address[0], *args)


def _pod_name(pod: dict[str, Any]) -> str:
    metadata = pod.get("metadata") or {}
    return str(metadata.get("name") or (metadata.get("generateName") or "") + "*")
