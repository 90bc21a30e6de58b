"""An HTTP proxy between the AWS SDK and moto: latency, faults, and a log of every call.

    with AwsProxy(moto.url, delay=0.05) as proxy:
        ...  # point AWS_ENDPOINT_URL at proxy.url
        proxy.counts  # calls per API, e.g. {"BatchGetSecretValue": 2}
        proxy.max_in_flight  # the most calls it was answering at one moment
        proxy.connect_delay = 0.1  # and more for the first answer on each new connection

moto answers the way AWS does for what it implements, but some answers it
cannot give faithfully (throttling, 5xx, AccessDeniedException as AWS's JSON
protocol sends it, KMS failures, latency, hangs, dropped connections); the
proxy produces those, so the AWS providers meet them over real HTTP. The
delay makes moto behave like a far away endpoint: resolving in fewer round
trips (batching, concurrency) shows up as wall time in the benchmarks, and
the interval each call was in flight tells waiting on the network from the rest.
`connect_delay` stands for setting up a connection (a TCP and a TLS handshake
to a real endpoint): the first answer on each new connection waits that much
longer, so reusing connections shows as it would in production.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Headers that belong to one hop, not to the message (RFC 9110 section 7.6.1).
_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade", "content-length")
)  # fmt: skip


@dataclass
class Fault:
    """What the proxy does instead of (or to) a matching request.

    A request matches when its API (`operation`, "" for any) and, if given,
    a substring of its body (`contains`) match, for the first `times`
    matches (None: every one). Build them with the class methods.
    """

    operation: str = ""
    contains: str | None = None
    times: int | None = None
    status: int = 400
    code: str = ""
    hang: bool = False
    drop: bool = False  # close the connection without answering
    batch_entry: bool = False  # rewrite BatchGetSecretValue's answer instead of failing it
    hits: int = 0

    @classmethod
    def throttle(cls, operation: str = "", times: int | None = None) -> Fault:
        return cls(operation, times=times, status=400, code="ThrottlingException")

    @classmethod
    def server_error(
        cls, operation: str = "", times: int | None = None, status: int = 500
    ) -> Fault:
        return cls(operation, times=times, status=status, code="InternalServiceError")

    @classmethod
    def error(
        cls,
        operation: str,
        code: str,
        contains: str | None = None,
        times: int | None = None,
        status: int = 400,
    ) -> Fault:
        return cls(operation, contains, times, status=status, code=code)

    @classmethod
    def hang_up(cls, operation: str = "", times: int | None = None) -> Fault:
        """Never answer (until the proxy stops)."""
        return cls(operation, times=times, hang=True)

    @classmethod
    def drop_connection(cls, operation: str = "", times: int | None = None) -> Fault:
        """Close the connection unanswered: to the SDK, a connection that failed."""
        return cls(operation, times=times, drop=True)

    @classmethod
    def in_batch(cls, code: str, contains: str) -> Fault:
        """Move the secret whose name contains `contains` into the batch answer's Errors."""
        return cls("BatchGetSecretValue", contains, code=code, batch_entry=True)

    def matches(self, operation: str, body: bytes) -> bool:
        if self.operation and self.operation != operation:
            return False
        if self.contains is not None and self.contains.encode() not in body:
            return False
        return self.times is None or self.hits < self.times


@dataclass
class Request:
    operation: str  # e.g. "BatchGetSecretValue", from X-Amz-Target or the query's Action=
    region: str  # from the signature's credential scope
    body: dict[str, Any] = field(default_factory=dict)
    arrived: float = 0.0  # time.monotonic()
    answered: float | None = None  # None while in flight, or when never answered


class AwsProxy:
    """A proxy in front of `upstream` that adds `delay` seconds per request and injects faults."""

    def __init__(self, upstream: str, delay: float = 0.0, faults: Sequence[Fault] = ()) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.delay = delay
        self.connect_delay = 0.0
        self.connections = 0  # accepted so far
        self.faults = list(faults)
        self.requests: list[Request] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def counts(self) -> Counter[str]:
        """Calls per API so far."""
        with self._lock:
            return Counter(request.operation for request in self.requests)

    def total_calls(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def intervals(self) -> list[tuple[float, float]]:
        """(arrived, answered) of every answered call, in time.monotonic()."""
        with self._lock:
            return [(r.arrived, r.answered) for r in self.requests if r.answered is not None]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.max_in_flight = 0
            self.connections = 0

    def start(self) -> AwsProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> AwsProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _faults_for(self, operation: str, body: bytes) -> tuple[Fault | None, list[Fault]]:
        """The first matching fault that replaces the answer, and every one that edits it."""
        replace, edits = None, []
        with self._lock:
            for fault in self.faults:
                if not fault.matches(operation, body):
                    continue
                if fault.batch_entry:
                    edits.append(fault)
                elif replace is None:
                    replace = fault
                else:
                    continue
                fault.hits += 1
        return replace, edits

    def _arrived(self, operation: str, region: str, body: bytes) -> Request:
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            document = {}
        request = Request(operation, region, document, time.monotonic())
        with self._lock:
            self.requests.append(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        return request

    def _finished(self, request: Request, answered: bool) -> None:
        with self._lock:
            self._in_flight -= 1
            if answered:
                request.answered = time.monotonic()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per answer, sent at once: a header write and a body
            # write would meet delayed ACKs and add up to 200 ms per request.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True
            upstream: http.client.HTTPConnection | None = None  # kept alive per client connection

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy.connections += 1
                self.set_up = False  # the connection's set-up delay is still to pay

            def _relay(self) -> None:
                if not self.set_up:
                    self.set_up = True
                    if proxy.connect_delay:
                        proxy._stopping.wait(proxy.connect_delay)
                self._relay_request()

            def do_POST(self) -> None:
                self._relay()

            def do_GET(self) -> None:
                self._relay()

            def _relay_request(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = _operation(self.headers.get("X-Amz-Target"), body)
                region = _region(self.headers.get("Authorization", ""))
                request = proxy._arrived(operation, region, body)
                answered = False
                try:
                    answered = self._answer_for(operation, body)
                finally:
                    proxy._finished(request, answered)

            def _answer_for(self, operation: str, body: bytes) -> bool:
                if proxy.delay:
                    proxy._stopping.wait(proxy.delay)
                fault, edits = proxy._faults_for(operation, body)
                if fault is not None and (fault.hang or fault.drop):
                    if fault.hang:
                        proxy._stopping.wait()
                    self.close_connection = True
                    return False
                if fault is not None:
                    xml = not self.headers.get("X-Amz-Target")  # the query protocol (STS)
                    self._answer(fault.status, _error_body(fault.code, xml))
                    return True
                status, headers, answer = self._forward(body)
                for edit in edits if status == 200 else []:
                    answer = _move_to_errors(answer, body, edit)
                self._answer(status, answer, headers)
                return True

            def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                for attempt in (1, 2):  # a kept-alive upstream connection may have closed
                    if self.upstream is None:
                        self.upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                        self.upstream.connect()
                        assert self.upstream.sock is not None
                        self.upstream.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    try:
                        self.upstream.request(self.command, self.path, body, headers)
                        response = self.upstream.getresponse()
                        answer = response.read()
                    except (ConnectionError, http.client.HTTPException):
                        self.upstream.close()
                        self.upstream = None
                        if attempt == 2:
                            raise
                        continue
                    kept = [
                        (k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP
                    ]
                    return response.status, kept, answer
                raise AssertionError("unreachable")

            def _answer(
                self, status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()
            ) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                if not any(key.lower() == "content-type" for key, _ in headers):
                    json_body = body.startswith(b"{")
                    self.send_header(
                        "Content-Type", "application/x-amz-json-1.1" if json_body else "text/xml"
                    )
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def finish(self) -> None:
                super().finish()
                if self.upstream is not None:
                    self.upstream.close()

        return Handler


def _region(authorization: str) -> str:
    # "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/secretsmanager/aws4_request, ..."
    _, _, scope = authorization.partition("Credential=")
    parts = scope.split("/")
    return parts[2] if len(parts) > 2 else ""


def _operation(target: str | None, body: bytes) -> str:
    """The API a request calls: from X-Amz-Target (JSON protocol) or Action= (query protocol)."""
    if target:
        return target.rpartition(".")[2]
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    return form.get("Action", [""])[0]


def _error_body(code: str, xml: bool = False) -> bytes:
    """An error answer in the protocol's shape, with a message like a real one's."""
    message = f"injected {code} by the test proxy"
    if xml:
        return (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>1</RequestId></ErrorResponse>"
        ).encode()
    return json.dumps({"__type": code, "message": message}).encode()


def _move_to_errors(answer: bytes, request: bytes, fault: Fault) -> bytes:
    """The batch answer with the matching secrets under Errors, as AWS reports one it refused."""
    document = json.loads(answer)
    mark = fault.contains or ""
    document["SecretValues"] = [
        entry for entry in document.get("SecretValues", []) if mark not in entry.get("Name", "")
    ]
    asked = json.loads(request).get("SecretIdList", [])
    document.setdefault("Errors", []).extend(
        {"SecretId": secret_id, "ErrorCode": fault.code, "Message": "injected by the test proxy"}
        for secret_id in asked
        if mark in secret_id
    )
    return json.dumps(document).encode()
