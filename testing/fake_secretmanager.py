"""A stand-in for Google Secret Manager on loopback: real gRPC, real wire types.

Google ships no Secret Manager emulator, so this serves
`google.cloud.secretmanager.v1.SecretManagerService/AccessSecretVersion`
with the request and response messages of the installed
google-cloud-secret-manager package. secrets-init reaches it through
`SECRETMANAGER_EMULATOR_HOST`, unchanged client library and all, so what the
tests prove is what the real client does on the wire.

Faults are injected the way the real service produces them: status codes
(for the next N calls, or for one secret every time), per-call delays,
disabled and destroyed versions (FAILED_PRECONDITION, as Google answers),
and a wrong `data_crc32c`. Usable outside pytest (the demo and the benchmark
import it), and as a program:

    python -m testing.fake_secretmanager [--port N] [--delay S] PROJECT/SECRET=VALUE...

prints the port on stdout once serving, and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.cloud.secretmanager_v1 import types

from testing.loopback import LoopbackServer, QuietHandler
from testing.process import child_env

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"

ENABLED = "ENABLED"
DISABLED = "DISABLED"
DESTROYED = "DESTROYED"


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
    code: grpc.StatusCode
    remaining: int | None  # None: every call
    secret: str | None  # None: any secret


@dataclass
class FakeSecretManager:
    """Secrets keyed by (project, location or None, secret id), versions numbered from 1."""

    delay: float = 0.0  # seconds every call waits before answering
    secrets: dict[tuple[str, str | None, str], dict[int, Version]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # resource names, in arrival order
    metadata: list[dict[str, str]] = field(default_factory=list)  # each call's request metadata
    max_in_flight: int = 0  # the most calls being answered at one moment
    intervals: list[tuple[float, float]] = field(default_factory=list)  # monotonic, per call
    _in_flight: int = 0
    _faults: list[_Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: Any = None
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

    def fail_next(self, code: grpc.StatusCode, n: int = 1, *, secret: str | None = None) -> None:
        """The next `n` calls (for `secret`, or any) end with `code`."""
        with self._lock:
            self._faults.append(_Fault(code, n, secret))

    def fail_always(self, code: grpc.StatusCode, *, secret: str | None = None) -> None:
        with self._lock:
            self._faults.append(_Fault(code, None, secret))

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    # -- lifecycle -------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._stopping.clear()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
        handler = grpc.unary_unary_rpc_method_handler(
            self._access,
            request_deserializer=types.AccessSecretVersionRequest.deserialize,
            response_serializer=types.AccessSecretVersionResponse.serialize,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"AccessSecretVersion": handler}),)
        )
        self.port = server.add_insecure_port(f"{host}:{port}")
        server.start()
        self._server = server
        return self.port

    @property
    def address(self) -> str:
        """The value for SECRETMANAGER_EMULATOR_HOST."""
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def __enter__(self) -> FakeSecretManager:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the RPC ---------------------------------------------------------------

    def _access(
        self, request: types.AccessSecretVersionRequest, context: grpc.ServicerContext
    ) -> types.AccessSecretVersionResponse:
        started = time.monotonic()
        with self._lock:
            self.requests.append(request.name)
            self.metadata.append({key: str(value) for key, value in context.invocation_metadata()})
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            delay = self.delay
        try:
            if delay:
                self._stopping.wait(delay)  # a stopped server does not keep its callers
            return self._answer(request.name, context)
        finally:
            with self._lock:
                self._in_flight -= 1
                self.intervals.append((started, time.monotonic()))

    def _answer(
        self, name: str, context: grpc.ServicerContext
    ) -> types.AccessSecretVersionResponse:
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
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed name [{name}]")
        project, secret, wanted = parts[1], parts[3], parts[5]
        fault = self._take_fault(secret)
        if fault is not None:
            context.abort(fault, f"injected {fault.name}")
        with self._lock:
            versions = dict(self.secrets.get((project, location, secret), {}))
        if not versions:
            context.abort(
                grpc.StatusCode.NOT_FOUND, f"Secret [{name}] not found or has no versions."
            )
        number = max(versions) if wanted == "latest" else int(wanted) if wanted.isdigit() else 0
        found = versions.get(number)
        if found is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
        prefix = f"projects/{project}/" + (f"locations/{location}/" if location else "")
        resolved = f"{prefix}secrets/{secret}/versions/{number}"
        if found.state != ENABLED:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Secret Version [{resolved}] is in {found.state} state.",
            )
        payload = types.SecretPayload(data=found.payload)
        if found.crc32c is not None:
            payload.data_crc32c = found.crc32c
        return types.AccessSecretVersionResponse(name=resolved, payload=payload)

    def _take_fault(self, secret: str) -> grpc.StatusCode | None:
        with self._lock:
            for fault in self._faults:
                if fault.secret is not None and fault.secret != secret:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault.code
        return None


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
