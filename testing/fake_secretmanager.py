"""A stand-in for Google Secret Manager on loopback: its REST API, as Google answers it.

Google ships no Secret Manager emulator, so this serves AccessSecretVersion
the way secretmanager.googleapis.com does over HTTP/1.1: `GET
/v1/{name}:access`, answered with the JSON form of AccessSecretVersionResponse
(base64 `data`, `dataCrc32c` as a decimal string) or with Google's error
document (`{"error": {"code", "message", "status"}}`) and its HTTP status.
secrets-init reaches it through `SECRETMANAGER_EMULATOR_HOST`.

The same port also speaks the gRPC face (AccessSecretVersion with the
installed google-cloud-secret-manager's wire types), for builds from before
the REST provider: the benchmark runs an earlier build beside this one
against one fake. A connection that opens with HTTP/2's preface is handed
to a gRPC server started on first use (one test pins that face; the rest never start it).

Faults are injected the way the real service produces them: status words
(for the next N calls, or for one secret every time), per-call delays,
disabled and destroyed versions (FAILED_PRECONDITION, as Google answers),
and a wrong `dataCrc32c`. Usable outside pytest (the demo and the benchmark
import it), and as a program:

    python -m testing.fake_secretmanager [--port N] [--delay S] PROJECT/SECRET=VALUE...

prints the port on stdout once serving, and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import base64
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from testing.loopback import LoopbackServer, QuietHandler, relay
from testing.process import child_env

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"

ENABLED = "ENABLED"
DISABLED = "DISABLED"
DESTROYED = "DESTROYED"

# Google's status words and the HTTP status its REST API answers each with.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

_HTTP2_PREFACE = b"PRI * HTTP/2.0"


def crc32c(data: bytes) -> int:
    """Bit-by-bit CRC-32C, deliberately unlike the provider's table-driven one.

    Two independent implementations agreeing is what makes the checksum tests
    mean something.
    """
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@dataclass
class Version:
    payload: bytes
    state: str = ENABLED
    crc32c: int | None = None  # what the response carries; None leaves the field out


@dataclass
class _Fault:
    status: str
    remaining: int | None  # None: every call
    secret: str | None  # None: any secret


class RefusedError(Exception):
    """An answer of Google's error kind: its status word and message."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class FakeSecretManager:
    """Secrets keyed by (project, location or None, secret id), versions numbered from 1."""

    delay: float = 0.0  # seconds every call waits before answering
    # Seconds more the first answer on each new connection waits: a TCP and a TLS
    # handshake to Google, so that reusing connections counts as in production.
    connect_delay: float = 0.0
    secrets: dict[tuple[str, str | None, str], dict[int, Version]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # resource names, in arrival order
    headers: list[dict[str, str]] = field(default_factory=list)  # each call's, names lowercased
    max_in_flight: int = 0  # the most calls being answered at one moment
    intervals: list[tuple[float, float]] = field(default_factory=list)  # monotonic, per call
    _in_flight: int = 0
    _faults: list[_Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _grpc: Any = None  # the gRPC face's server, once a gRPC client came
    _grpc_port: int = 0
    _stopping: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    # -- what the test defines ------------------------------------------------

    def add_secret(
        self,
        project: str,
        secret: str,
        payload: bytes | str,
        *,
        version: int | None = None,
        location: str | None = None,
        state: str = ENABLED,
        crc: int | bool | None = True,
    ) -> int:
        """Add a version (the next number unless `version` is given); returns its number.

        `crc=True` sends the right checksum, `False`/`None` omits it, an int sends that.
        """
        data = payload.encode() if isinstance(payload, str) else payload
        if crc is True:
            checksum: int | None = crc32c(data)
        elif crc is False or crc is None:
            checksum = None
        else:
            checksum = int(crc)
        with self._lock:
            versions = self.secrets.setdefault((project, location, secret), {})
            number = version if version is not None else max(versions, default=0) + 1
            versions[number] = Version(data, state, checksum)
        return number

    def fail_next(self, status: str, n: int = 1, *, secret: str | None = None) -> None:
        """The next `n` calls (for `secret`, or any) end with Google's `status` word."""
        self._add_fault(_Fault(status, n, secret))

    def fail_always(self, status: str, *, secret: str | None = None) -> None:
        self._add_fault(_Fault(status, None, secret))

    def _add_fault(self, fault: _Fault) -> None:
        if fault.status not in HTTP_STATUS:
            raise ValueError(f"{fault.status!r} is not one of {sorted(HTTP_STATUS)}")
        with self._lock:
            self._faults.append(fault)

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    # -- lifecycle -------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._stopping.clear()
        fake = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"  # kept-alive connections, as Google's front end

            def do_GET(self) -> None:
                fake._rest(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                if fake.connect_delay:
                    fake._stopping.wait(fake.connect_delay)
                if fake._speaks_http2(request):
                    fake._splice_to_grpc(request)
                else:
                    super().finish_request(request, client_address)

        self._server = Server((host, port), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.port

    @property
    def address(self) -> str:
        """The value for SECRETMANAGER_EMULATOR_HOST."""
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._grpc is not None:
            self._grpc.stop(grace=None)
            self._grpc = None

    def __enter__(self) -> FakeSecretManager:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the call, whichever face it came through -----------------------------

    def _serve(self, name: str, headers: dict[str, str]) -> tuple[str, Version]:
        """The resolved version name and the version, or RefusedError; counted and delayed."""
        started = time.monotonic()
        with self._lock:
            self.requests.append(name)
            self.headers.append(headers)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            delay = self.delay
        try:
            if delay:
                self._stopping.wait(delay)  # a stopped server does not keep its callers
            return self._answer(name)
        finally:
            with self._lock:
                self._in_flight -= 1
                self.intervals.append((started, time.monotonic()))

    def _answer(self, name: str) -> tuple[str, Version]:
        parts = name.split("/")
        location: str | None = None
        if len(parts) == 8 and parts[2] == "locations":
            location = parts.pop(3)
            parts.pop(2)
        if (
            len(parts) != 6
            or parts[0] != "projects"
            or parts[2] != "secrets"
            or parts[4] != "versions"
        ):
            raise RefusedError("INVALID_ARGUMENT", f"malformed name [{name}]")
        project, secret, wanted = parts[1], parts[3], parts[5]
        fault = self._take_fault(secret)
        if fault is not None:
            raise RefusedError(fault, f"injected {fault}")
        with self._lock:
            versions = dict(self.secrets.get((project, location, secret), {}))
        if not versions:
            raise RefusedError("NOT_FOUND", f"Secret [{name}] not found or has no versions.")
        number = max(versions) if wanted == "latest" else int(wanted) if wanted.isdigit() else 0
        found = versions.get(number)
        if found is None:
            raise RefusedError("NOT_FOUND", f"Secret Version [{name}] not found.")
        prefix = f"projects/{project}/" + (f"locations/{location}/" if location else "")
        resolved = f"{prefix}secrets/{secret}/versions/{number}"
        if found.state != ENABLED:
            raise RefusedError(
                "FAILED_PRECONDITION", f"Secret Version [{resolved}] is in {found.state} state."
            )
        return resolved, found

    def _take_fault(self, secret: str) -> str | None:
        with self._lock:
            for fault in self._faults:
                if fault.secret is not None and fault.secret != secret:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault.status
        return None

    # -- the REST face ---------------------------------------------------------

    def _rest(self, handler: QuietHandler) -> None:
        path = handler.path.partition("?")[0]
        if not (path.startswith("/v1/") and path.endswith(":access")):
            handler.send(404, b"Not Found", "text/html")  # what Google's front end says
            return
        name = path[len("/v1/") : -len(":access")]
        headers = {key.lower(): value for key, value in handler.headers.items()}
        try:
            resolved, version = self._serve(name, headers)
        except RefusedError as refusal:
            code = HTTP_STATUS[refusal.status]
            error = {"code": code, "message": refusal.message, "status": refusal.status}
            handler.send_json(code, {"error": error})
            return
        payload: dict[str, str] = {"data": base64.b64encode(version.payload).decode()}
        if version.crc32c is not None:
            payload["dataCrc32c"] = str(version.crc32c)  # int64 is a string in JSON
        handler.send_json(200, {"name": resolved, "payload": payload})

    # -- the gRPC face, for earlier builds -------------------------------------

    @staticmethod
    def _speaks_http2(request: socket.socket) -> bool:
        request.settimeout(10)
        try:
            first = request.recv(len(_HTTP2_PREFACE), socket.MSG_PEEK | socket.MSG_WAITALL)
        except OSError:
            return False
        finally:
            request.settimeout(None)
        return first == _HTTP2_PREFACE

    def _splice_to_grpc(self, request: socket.socket) -> None:
        """Relay the connection to the gRPC face, both ways, until either side closes."""
        with socket.create_connection(("127.0.0.1", self._grpc_face())) as upstream:
            relay(request, upstream)

    def _grpc_face(self) -> int:
        """The gRPC face's port, started on first use (importing grpc costs the tests nothing)."""
        with self._lock:
            if self._grpc is not None:
                return self._grpc_port
            from concurrent import futures

            import grpc
            from google.cloud.secretmanager_v1 import types

            def access(request: Any, context: Any) -> Any:
                headers = {key: str(value) for key, value in context.invocation_metadata()}
                try:
                    resolved, version = self._serve(request.name, headers)
                except RefusedError as refusal:
                    context.abort(getattr(grpc.StatusCode, refusal.status), refusal.message)
                payload = types.SecretPayload(data=version.payload)
                if version.crc32c is not None:
                    payload.data_crc32c = version.crc32c
                return types.AccessSecretVersionResponse(name=resolved, payload=payload)

            server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
            handler = grpc.unary_unary_rpc_method_handler(
                access,
                request_deserializer=types.AccessSecretVersionRequest.deserialize,
                response_serializer=types.AccessSecretVersionResponse.serialize,
            )
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(SERVICE, {"AccessSecretVersion": handler}),)
            )
            self._grpc_port = server.add_insecure_port("127.0.0.1:0")
            server.start()
            self._grpc = server
            return self._grpc_port


def gsm_env(fake: FakeSecretManager, **variables: str) -> dict[str, str]:
    """A clean environment for secrets-init that reaches Google only at `fake`."""
    return child_env(SECRETMANAGER_EMULATOR_HOST=fake.address, **variables)


class FakeMetadataServer:
    """The GCE metadata server's project-id endpoint (for GCE_METADATA_HOST).

    Answers only requests that carry `Metadata-Flavor: Google`, as the real
    one does, and counts them.
    """

    def __init__(self, project: str) -> None:
        self.project = project
        self.hits = 0
        self._server: LoopbackServer | None = None

    def start(self) -> int:
        outer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                if self.headers.get("Metadata-Flavor") != "Google":
                    self._answer(403, b"Missing Metadata-Flavor:Google header.")
                elif self.path == "/computeMetadata/v1/project/project-id":
                    self._answer(200, outer.project.encode())
                else:
                    self._answer(404, b"not found")

            def end_headers(self) -> None:
                self.send_header("Metadata-Flavor", "Google")
                super().end_headers()

            def _answer(self, status: int, body: bytes) -> None:
                self.send(status, body, "application/text")

        self._server = LoopbackServer(Handler)
        return self._server.port

    @property
    def address(self) -> str:
        """The value for GCE_METADATA_HOST."""
        assert self._server is not None
        return f"127.0.0.1:{self._server.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


def main(argv: list[str]) -> int:
    fake = FakeSecretManager()
    port = 0
    args = list(argv)
    while args and args[0].startswith("--"):
        option = args.pop(0)
        if option == "--port":
            port = int(args.pop(0))
        elif option == "--delay":
            fake.delay = float(args.pop(0))
        else:
            sys.stderr.write(f"unknown option {option}\n")
            return 2
    for spec in args:
        path, _, value = spec.partition("=")
        project, _, secret = path.partition("/")
        fake.add_secret(project, secret, value)
    fake.start(port=port)
    stopped = threading.Event()
    handler: Callable[[int, Any], None] = lambda number, frame: stopped.set()  # noqa: E731
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    sys.stdout.write(f"{fake.port}\n")
    sys.stdout.flush()
    stopped.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
