"""The local endpoints resolution is measured against, and the secrets they hold.

AWS: moto's server in its own process (so its work does not compete for this
process's GIL), behind the proxy that adds latency and keeps the interval
each call was in flight. Google: the fake Secret Manager (REST, and gRPC for
earlier builds, on one port), whose own per-call and per-connection delays
play the proxy's part. All three come from testing/, which the tests use too.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass, field

from testing.aws_proxy import AwsProxy
from testing.fake_secretmanager import FakeSecretManager
from testing.moto import ACCOUNT, DUMMY_CREDENTIALS, client, start_moto

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
GOOGLE_PROJECT = "bench-project"

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
    proxy: AwsProxy | None = None
    google: FakeSecretManager | None = None
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
        env = {"AWS_EC2_METADATA_DISABLED": "true", **DUMMY_CREDENTIALS}
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
                moto = stack.enter_context(start_moto())
                emulators.proxy = stack.enter_context(AwsProxy(moto.url))
                _seed_aws(moto.url, per_kind, emulators)
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


def _seed_aws(url: str, per_kind: int, emulators: Emulators) -> None:
    """Straight into moto: seeding is not measured."""
    clients = {
        region: (client(url, "secretsmanager", region), client(url, "ssm", region))
        for region in REGIONS
    }
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


def _google_server(per_kind: int, emulators: Emulators) -> FakeSecretManager:
    fake = FakeSecretManager()
    fake.start()
    refs = []
    for index in range(per_kind):
        fake.add_secret(GOOGLE_PROJECT, f"g-{index}", f"google-value-{index}")
        refs.append(f"gcp:secretmanager:projects/{GOOGLE_PROJECT}/secrets/g-{index}")
    emulators.references[GOOGLE] = refs
    return fake
