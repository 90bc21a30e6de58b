"""The local endpoints resolution is measured against, and the secrets they hold.

AWS: moto's server in its own process (so its work does not compete for this
process's GIL), behind `LatencyProxy`. Google: the project's fake Secret
Manager gRPC server from tests/google, whose own per-call delay plays the
proxy's part and whose request log counts the calls.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.latency_proxy import LatencyProxy
from bench.subjects import ROOT

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
ACCOUNT = "123456789012"  # moto's default account
GOOGLE_PROJECT = "bench-project"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}

SM, SSM, GOOGLE = "sm", "ssm", "google"
KINDS = (SM, SSM, GOOGLE)
PROVIDER_MODULES = {
    SM: "secrets_init.providers.aws_secretsmanager_fetch",
    SSM: "secrets_init.providers.aws_ssm_fetch",
    GOOGLE: "secrets_init.providers.google_fetch",
}


def region_of(index: int) -> str:
    """The k-th secret of every kind lives in region k mod 3: refs span regions."""
    return REGIONS[index % len(REGIONS)]


def provider_available(kind: str) -> bool:
    return importlib.util.find_spec(PROVIDER_MODULES[kind]) is not None


@dataclass
class Emulators:
    proxy: LatencyProxy | None = None
    google: Any = None  # tests.google.fake_secretmanager.FakeSecretManager
    references: dict[str, list[str]] = field(default_factory=dict)  # kind -> references
    problems: dict[str, str] = field(default_factory=dict)  # kind -> why it is unavailable

    def set_delay(self, seconds: float) -> None:
        if self.proxy is not None:
            self.proxy.delay = seconds
        if self.google is not None:
            self.google.delay = seconds

    def calls(self) -> int:
        aws = self.proxy.total_calls() if self.proxy is not None else 0
        return aws + (self.google.calls if self.google is not None else 0)

    def network_ms(self, since: float) -> float:
        """Wall time since `since` during which at least one call was in flight.

        Divided by the added latency this is the number of serial round trips,
        measured where the calls are served rather than guessed from totals.
        """
        spans = list(self.proxy.intervals) if self.proxy is not None else []
        if self.google is not None:
            spans += list(self.google.intervals)
        busy, end = 0.0, since
        for start, stop in sorted(s for s in spans if s[0] >= since):
            if stop > end:
                busy += stop - max(start, end)
                end = stop
        return busy * 1000

    def env(self) -> dict[str, str]:
        """What secrets-init needs to reach the emulators (no references)."""
        env = {"AWS_EC2_METADATA_DISABLED": "true", **CREDENTIALS}
        if self.proxy is not None:
            env["AWS_ENDPOINT_URL"] = self.proxy.url
        if self.google is not None:
            env["SECRETMANAGER_EMULATOR_HOST"] = self.google.address
        return env

    def available(self, kind: str) -> bool:
        return kind not in self.problems


@contextlib.contextmanager
def running(per_kind: int) -> Iterator[Emulators]:
    """Emulators holding `per_kind` secrets of each kind, spread over REGIONS."""
    emulators = Emulators()
    with contextlib.ExitStack() as stack:
        for kind in KINDS:
            if not provider_available(kind):
                emulators.problems[kind] = "provider not written yet"
        if emulators.available(SM) or emulators.available(SSM):
            try:
                port = stack.enter_context(_moto_server())
                emulators.proxy = LatencyProxy(port).start()
                stack.callback(emulators.proxy.stop)
                _seed_aws(port, per_kind, emulators)
            except Exception as error:  # noqa: BLE001 - reported as a row note instead
                for kind in (SM, SSM):
                    emulators.problems.setdefault(kind, f"moto unavailable: {error}")
        if emulators.available(GOOGLE):
            try:
                emulators.google = _google_server(per_kind, emulators)
                stack.callback(emulators.google.stop)
            except Exception as error:  # noqa: BLE001 - reported as a row note instead
                emulators.problems[GOOGLE] = f"fake server unavailable: {error}"
        yield emulators


@contextlib.contextmanager
def _moto_server() -> Iterator[int]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto server did not start")
            time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _seed_aws(port: int, per_kind: int, emulators: Emulators) -> None:
    import boto3

    endpoint = f"http://127.0.0.1:{port}"  # straight to moto: seeding is not measured
    clients = {}
    for region in REGIONS:
        session = boto3.session.Session(region_name=region, **_boto_credentials())
        clients[region] = (
            session.client("secretsmanager", endpoint_url=endpoint),
            session.client("ssm", endpoint_url=endpoint),
        )
    sm_refs, ssm_refs = [], []
    for index in range(per_kind):
        sm, ssm = clients[region_of(index)]
        created = sm.create_secret(Name=f"bench/sm-{index}", SecretString=f"sm-value-{index}")
        sm_refs.append(created["ARN"])
        name = f"/bench/ssm-{index}"
        ssm.put_parameter(Name=name, Value=f"ssm-value-{index}", Type="SecureString")
        ssm_refs.append(f"arn:aws:ssm:{region_of(index)}:{ACCOUNT}:parameter{name}")
    emulators.references[SM] = sm_refs
    emulators.references[SSM] = ssm_refs


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def _google_server(per_kind: int, emulators: Emulators) -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.google.fake_secretmanager import FakeSecretManager

    class TimedFake(FakeSecretManager):
        """Keeps the interval each call was in flight, like LatencyProxy."""

        intervals: list[tuple[float, float]] = []  # noqa: RUF012 - replaced per instance

        def _access(self, request: Any, context: Any) -> Any:
            started = time.monotonic()
            try:
                return super()._access(request, context)
            finally:
                self.intervals.append((started, time.monotonic()))

    fake = TimedFake()
    fake.intervals = []
    fake.start()
    refs = []
    for index in range(per_kind):
        fake.add_secret(GOOGLE_PROJECT, f"g-{index}", f"google-value-{index}")
        refs.append(f"gcp:secretmanager:projects/{GOOGLE_PROJECT}/secrets/g-{index}")
    emulators.references[GOOGLE] = refs
    return fake
