"""A local AWS for tests, benchmarks and the demo: moto, and a fault-injecting proxy.

Usable outside pytest (`bench/` and the demo import it):

    moto = start_moto()
    with LatencyProxy(moto.url, delay=0.05) as proxy:
        ...  # point AWS_ENDPOINT_URL at proxy.url
        proxy.counts  # requests per API, e.g. {"BatchGetSecretValue": 2}
    moto.stop()

moto answers the way AWS does for what it implements, but some answers it
cannot give faithfully (throttling, 5xx, AccessDeniedException as AWS's JSON
protocol sends it, KMS failures, latency, hangs); the proxy produces those,
so the AWS providers meet them over real HTTP.
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

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
ACCOUNT = "123456789012"  # moto's default account


@dataclass
class Moto:
    url: str
    server: Any

    def stop(self) -> None:
        self.server.stop()


def start_moto() -> Moto:
    """moto's server on a free loopback port, in a daemon thread of this process."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return Moto(f"http://{host}:{port}", server)


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
        return cls(operation, times=times, hang=True)

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
    operation: str  # e.g. "BatchGetSecretValue", from the X-Amz-Target header
    region: str  # from the signature's credential scope
    body: dict[str, Any] = field(default_factory=dict)


class LatencyProxy:
    """An HTTP proxy in front of `upstream` that adds `delay` seconds per request and faults."""

    def __init__(self, upstream: str, delay: float = 0.0, faults: Sequence[Fault] = ()) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.delay = delay
        self.faults = list(faults)
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(request.operation for request in self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def start(self) -> LatencyProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LatencyProxy:
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

    def _record(self, operation: str, region: str, body: bytes) -> None:
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            document = {}
        with self._lock:
            self.requests.append(Request(operation, region, document))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per answer, sent at once: a header write and a body
            # write would meet delayed ACKs and add up to 200 ms per request.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self._relay()

            def do_GET(self) -> None:
                self._relay()

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = _operation(self.headers.get("X-Amz-Target"), body)
                proxy._record(operation, _region(self.headers.get("Authorization", "")), body)
                if proxy.delay:
                    time.sleep(proxy.delay)
                fault, edits = proxy._faults_for(operation, body)
                if fault is not None and fault.hang:
                    proxy._stopping.wait()
                    self.close_connection = True
                    return
                if fault is not None:
                    xml = not self.headers.get("X-Amz-Target")  # the query protocol (STS)
                    self._answer(fault.status, _error_body(fault.code, xml))
                    return
                status, headers, answer = self._forward(body)
                for edit in edits if status == 200 else []:
                    answer = _move_to_errors(answer, body, edit)
                self._answer(status, answer, headers)

            def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
                connection = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                connection.connect()
                connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    connection.request(self.command, self.path, body, headers)
                    response = connection.getresponse()
                    answer = response.read()
                    kept = [
                        (k, v)
                        for k, v in response.getheaders()
                        if k.lower() not in ("content-length", "connection", "transfer-encoding")
                    ]
                    return response.status, kept, answer
                finally:
                    connection.close()

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


def main(argv: Sequence[str] | None = None) -> None:
    """Run moto (behind the proxy when --delay is given) until interrupted, for the demo."""
    import argparse

    import boto3

    parser = argparse.ArgumentParser(prog="python -m tests.aws.emulator", description=main.__doc__)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to each request")
    parser.add_argument("--secret", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--parameter", action="append", default=[], metavar="/NAME=VALUE")
    args = parser.parse_args(argv)
    moto = start_moto()
    proxy = LatencyProxy(moto.url, delay=args.delay).start() if args.delay else None
    url = proxy.url if proxy else moto.url
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    secrets = boto3.client("secretsmanager", region_name=args.region, endpoint_url=moto.url, **keys)
    ssm = boto3.client("ssm", region_name=args.region, endpoint_url=moto.url, **keys)
    print(f"AWS_ENDPOINT_URL={url}", flush=True)
    for item in args.secret:
        name, _, value = item.partition("=")
        print(secrets.create_secret(Name=name, SecretString=value)["ARN"], flush=True)
    for item in args.parameter:
        name, _, value = item.partition("=")
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
        print(f"arn:aws:ssm:{args.region}:{ACCOUNT}:parameter{name}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
