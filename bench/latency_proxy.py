"""An HTTP proxy that adds a fixed delay to every request and counts API calls.

It stands between the AWS SDK and moto, so the emulator behaves like a far
away endpoint: each request costs one round trip of `delay` seconds, and
resolving in fewer round trips (batching, concurrency) shows up as wall time.
Calls are counted per operation (the X-Amz-Target header of the JSON
protocol both Secrets Manager and Parameter Store use), and the interval each
was in flight is kept, to tell waiting on the network from everything else.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Headers that belong to one hop, not to the message (RFC 9110 section 7.6.1).
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


class LatencyProxy:
    def __init__(self, upstream_port: int, delay: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.calls: Counter[str] = Counter()
        self.intervals: list[tuple[float, float]] = []  # monotonic (arrival, answered) per call
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LatencyProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def total_calls(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.calls)

    def _count(self, operation: str) -> None:
        with self._lock:
            self.calls[operation] += 1

    def _record(self, started: float) -> None:
        with self._lock:
            self.intervals.append((started, time.monotonic()))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            upstream: http.client.HTTPConnection | None = None

            def setup(self) -> None:
                # Headers and body go out in two writes; with Nagle's algorithm on, the
                # second waits for the client's delayed ACK: 40 ms added to every call.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                super().setup()

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                started = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                target = self.headers.get("X-Amz-Target", "")
                proxy._count(target.rsplit(".", 1)[-1] or f"{self.command} {self.path}")
                if proxy.delay:
                    time.sleep(proxy.delay)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                status, reply_headers, data = self._upstream(body, headers)
                self.send_response(status)
                for key, value in reply_headers:
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                proxy._record(started)

            def _upstream(
                self, body: bytes | None, headers: dict[str, str]
            ) -> tuple[int, list[tuple[str, str]], bytes]:
                for attempt in (1, 2):  # a kept-alive upstream connection may have closed
                    if self.upstream is None:
                        self.upstream = http.client.HTTPConnection(
                            "127.0.0.1", proxy.upstream_port, timeout=60
                        )
                    try:
                        self.upstream.request(self.command, self.path, body, headers)
                        reply = self.upstream.getresponse()
                        return reply.status, reply.getheaders(), reply.read()
                    except (ConnectionError, http.client.HTTPException):
                        self.upstream.close()
                        self.upstream = None
                        if attempt == 2:
                            raise
                raise AssertionError("unreachable")

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        return Handler
