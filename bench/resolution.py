"""Part 3: how long secrets-init keeps a program from starting while it fetches secrets.

secrets-init runs as a real subprocess with the references in its
environment and `--log-level info`; it logs `resolved N secret references in
X ms`, timed in the child from before the SDK import to the last answer. It
also runs with `-X importtime`, so the SDK import time of that very run can
be subtracted (the machine is too noisy to subtract an import time measured
in another process); its own overhead is part of what is subtracted. The
same references are then fetched one by one in this process, as the original
Go tool does (GetSecretValue, GetParameter, AccessSecretVersion in a row),
with clients made and connections opened beforehand so the baseline is as
fast as one-by-one can be. API calls are counted at the proxy and the fake
Google server.

The proxy and the fake Google server also keep the interval every call was
in flight: the wall time during which at least one call was pending,
divided by the latency, is the number of serial round trips, which is what
batching and concurrency are meant to keep flat as N grows. What is left of
the time beyond the import is CPU work: client creation, parsing, threads.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import stats
from bench.emulators import GOOGLE, KINDS, SM, SSM, Emulators, region_of
from bench.subjects import Subjects, clean_env

_RESOLVED = re.compile(r"resolved (\d+) secret references in (\d+) ms")
SM_BATCH, SSM_BATCH = 20, 10  # BatchGetSecretValue and GetParameters limits


@dataclass
class Scenario:
    key: str
    label: str
    counts: dict[str, int]  # kind -> how many references
    problem: str = ""  # why it cannot run, if it cannot
    si_ms: list[float] = field(default_factory=list)  # logged resolution time, with latency
    si_import_ms: list[float] = field(default_factory=list)  # SDK import within those runs
    si_network_ms: list[float] = field(default_factory=list)  # some call in flight, same runs
    si_calls: int | None = None
    baseline_ms: float | None = None
    baseline_calls: int | None = None
    error: str = ""

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    @property
    def kinds(self) -> list[str]:
        return [kind for kind in KINDS if self.counts.get(kind)]

    def min_calls(self) -> int:
        """The fewest API calls the batch sizes allow: per region, ceil(n/20) + ceil(n/10)."""
        total = self.counts.get(GOOGLE, 0)
        for kind, size in ((SM, SM_BATCH), (SSM, SSM_BATCH)):
            per_region: dict[str, int] = {}
            for index in range(self.counts.get(kind, 0)):
                per_region[region_of(index)] = per_region.get(region_of(index), 0) + 1
            total += sum(math.ceil(count / size) for count in per_region.values())
        return total

    @property
    def si_median(self) -> float | None:
        return stats.median(self.si_ms) if self.si_ms else None

    @property
    def import_median(self) -> float | None:
        return stats.median(self.si_import_ms) if self.si_import_ms else None

    @property
    def net_median(self) -> float | None:
        """Resolution time beyond the SDK import, run by run, then the median."""
        return _net(self.si_ms, self.si_import_ms)

    @property
    def network_median(self) -> float | None:
        return stats.median(self.si_network_ms) if self.si_network_ms else None


def _net(total: list[float], imports: list[float]) -> float | None:
    if not total:
        return None
    return stats.median([t - i for t, i in zip(total, imports, strict=True)])


@dataclass
class SdkCost:
    name: str
    import_ms: float | None
    rss_kib: int | None
    note: str = ""


@dataclass
class Result:
    scenarios: list[Scenario]
    sdk: dict[str, SdkCost]  # "aws" / "google"
    latency_ms: float

    def scenario(self, key: str) -> Scenario | None:
        return next((s for s in self.scenarios if s.key == key), None)

    def net_ms(self, scenario: Scenario) -> float | None:
        return scenario.net_median

    def rounds_beyond_import(self, scenario: Scenario) -> float | None:
        net = scenario.net_median
        return None if net is None else net / self.latency_ms

    def network_rounds(self, scenario: Scenario) -> float | None:
        network = scenario.network_median
        return None if network is None else network / self.latency_ms


def scenarios(sizes: Sequence[int], aws_goal: tuple[int, int], google_goal: int) -> list[Scenario]:
    """Mixed N over the three kinds, then the two scenarios the issues set goals for."""
    found = []
    for n in sizes:
        counts = dict.fromkeys(KINDS, 0)
        for index in range(n):
            counts[KINDS[index % len(KINDS)]] += 1
        found.append(Scenario(f"mixed-{n}", f"N={n} mixed", counts))
    sm, ssm = aws_goal
    found.append(Scenario("aws-goal", f"{sm} SM + {ssm} SSM", {SM: sm, SSM: ssm}))
    found.append(Scenario("google-goal", f"{google_goal} Google", {GOOGLE: google_goal}))
    return found


def per_kind_needed(found: Sequence[Scenario]) -> int:
    return max(s.counts.get(kind, 0) for s in found for kind in KINDS)


def reference_env(emulators: Emulators, counts: dict[str, int]) -> dict[str, str]:
    env = {}
    for kind in KINDS:
        for index in range(counts.get(kind, 0)):
            env[f"BENCH_{kind.upper()}_{index:03d}"] = emulators.references[kind][index]
    return env


# What the Google provider imports: google-auth for credentials, urllib3 for the calls.
GOOGLE_IMPORT = "import certifi, google.auth, google.auth.transport.requests, urllib3"


def run(
    subjects: Subjects,
    emulators: Emulators,
    found: list[Scenario],
    repeats: int,
    latency: float,
) -> Result:
    sdk = {
        "aws": sdk_cost(subjects, "aws", "import boto3, botocore.config", repeats),
        "google": sdk_cost(
            subjects,
            "google",
            GOOGLE_IMPORT,
            repeats,
        ),
    }
    for scenario in found:
        missing = [kind for kind in scenario.kinds if not emulators.available(kind)]
        if missing:
            scenario.problem = "; ".join(f"{k}: {emulators.problems[k]}" for k in missing)
            continue
        env = clean_env(**emulators.env(), **reference_env(emulators, scenario.counts))
        python, *module = subjects.module()
        argv = [python, "-X", "importtime", *module, "--log-level", "info", "--", "true"]
        emulators.set_delay(latency)
        for _ in range(repeats):
            before, since = emulators.calls(), time.monotonic()
            elapsed, imported, error = _run_secrets_init(argv, env, scenario.n)
            if elapsed is None:
                scenario.error = error
                break
            scenario.si_ms.append(elapsed)
            scenario.si_import_ms.append(imported)
            scenario.si_network_ms.append(emulators.network_ms(since))
            scenario.si_calls = emulators.calls() - before
        if not scenario.error:
            _baseline(scenario, emulators, latency)
    emulators.set_delay(0.0)
    return Result(found, sdk, latency * 1000)


def _run_secrets_init(
    argv: list[str], env: dict[str, str], n: int
) -> tuple[float | None, float, str]:
    """Logged resolution ms, the SDK import ms inside it, and an error (empty if none)."""
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None, 0.0, "timed out"
    match = _RESOLVED.search(done.stderr)
    if done.returncode != 0 or match is None or int(match.group(1)) != n:
        lines = [ln for ln in done.stderr.splitlines() if not ln.startswith("import time:")]
        return None, 0.0, f"exit {done.returncode}: {lines[0] if lines else 'no log line'}"
    return float(match.group(2)), sdk_import_ms(done.stderr), ""


def sdk_import_ms(importtime_output: str) -> float:
    """Cumulative time of the outermost imports of third-party packages.

    In secrets-init those happen only in the child's fetch (PID 1 imports the
    standard library and secrets_init alone), so this is the SDK import time
    of that run, lazy imports during client creation included. Outermost
    means under no other third-party import: the providers' own modules
    (secrets_init.providers.aws_client) import the SDKs, and a module
    imported through importlib.import_module is not timed, so its own
    imports show at the top level.
    """
    total = 0
    ancestors: list[bool] = []  # per nesting level above: a third-party import?
    # Printed as each import ends, so a module's imports come before it: read backwards.
    for line in reversed(importtime_output.splitlines()):
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|", 2)
        name = name[1:]  # one space after the bar, then two per nesting level
        level = (len(name) - len(name.lstrip(" "))) // 2
        del ancestors[level:]
        top = name.strip().split(".", 1)[0]
        third_party = top != "secrets_init" and top not in sys.stdlib_module_names
        if third_party and not any(ancestors):
            total += int(cumulative)
        ancestors += [False] * (level - len(ancestors)) + [third_party]
    return total / 1000


def sdk_cost(subjects: Subjects, name: str, statement: str, repeats: int) -> SdkCost:
    """Import time and the RSS it adds, in a fresh interpreter each time (median)."""
    code = (
        "import time\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS:'):\n"
        "            return int(line.split()[1])\n"
        "before = rss(); started = time.perf_counter()\n"
        f"{statement}\n"
        "print((time.perf_counter() - started) * 1000, rss() - before)\n"
    )
    times, sizes = [], []
    for _ in range(max(1, repeats)):
        done = subprocess.run(
            [subjects.clean_python, "-I", "-c", code],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            return SdkCost(name, None, None, "not installed")
        elapsed, added = done.stdout.split()
        times.append(float(elapsed))
        sizes.append(int(added))
    return SdkCost(name, stats.median(times), int(stats.median(sizes)))


def _baseline(scenario: Scenario, emulators: Emulators, latency: float) -> None:
    """One call per reference, one after the other, as the original tool does."""
    calls = _one_by_one_calls(scenario, emulators)
    emulators.set_delay(0.0)
    for call in calls:  # warm every client: connections and lazy SDK loading are not timed
        call()
    emulators.set_delay(latency)
    before = emulators.calls()
    started = time.perf_counter()
    for call in calls:
        call()
    scenario.baseline_ms = (time.perf_counter() - started) * 1000
    scenario.baseline_calls = emulators.calls() - before


def _one_by_one_calls(scenario: Scenario, emulators: Emulators) -> list[Any]:
    import functools

    calls: list[Any] = []
    if scenario.counts.get(SM) or scenario.counts.get(SSM):
        import boto3

        assert emulators.proxy is not None
        env = emulators.env()
        clients: dict[tuple[str, str], Any] = {}

        def client(service: str, region: str) -> Any:
            if (service, region) not in clients:
                clients[(service, region)] = boto3.session.Session(
                    aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                    region_name=region,
                ).client(service, endpoint_url=env["AWS_ENDPOINT_URL"])
            return clients[(service, region)]

        for index in range(scenario.counts.get(SM, 0)):
            sm = client("secretsmanager", region_of(index))
            arn = emulators.references[SM][index]
            calls.append(functools.partial(sm.get_secret_value, SecretId=arn))
        for index in range(scenario.counts.get(SSM, 0)):
            ssm = client("ssm", region_of(index))
            name = emulators.references[SSM][index].split(":parameter", 1)[1]
            calls.append(functools.partial(ssm.get_parameter, Name=name, WithDecryption=True))
    if scenario.counts.get(GOOGLE):
        import urllib3

        assert emulators.google is not None
        http = urllib3.PoolManager()
        base = f"http://{emulators.google.address}/v1"
        for index in range(scenario.counts[GOOGLE]):
            resource = emulators.references[GOOGLE][index].removeprefix("gcp:secretmanager:")
            url = f"{base}/{resource}/versions/latest:access"
            calls.append(functools.partial(http.request, "GET", url))
    return calls
