"""Part 3c (section 7 of the report): whole runs, from spawn to exit, against a plain SDK import.

What a pod waits for is the whole `secrets-init -- true` run, not the time
the child logs: interpreter, PID 1's start, the fork, the child's imports,
the SDK's set-up, the calls and the exec. Each row is spawned and reaped as
in part 1, rounds interleaved so that noise hits every row alike, with the
latency proxy adding its delay to every request. The plain imports
(`python -I -c "import boto3"`, and the Google SDK's) are what the issue
compares against; with `--compare-with DIR`, the same runs of an earlier
build (a checkout, e.g. a `git worktree` of an older commit) sit next to
this build's. Rows marked *new connections* also hold the first answer on
every new connection, at the proxy and at the fake Google server (a TCP and
a TLS handshake to a real endpoint), so that reusing connections counts as
it would in production: one HTTP/2 connection for an earlier build's gRPC
calls, one connection per call in flight for the REST calls. The proxy's
most calls in flight at once is kept for every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench import stats
from bench.emulators import GOOGLE, SM, SSM, Emulators
from bench.resolution import GOOGLE_IMPORT, reference_env
from bench.startup import spawn_and_wait
from bench.subjects import Subjects, clean_env

CONNECT_ROUND_TRIPS = 2  # TCP's handshake and TLS 1.3's, each one round trip


@dataclass
class Row:
    key: str
    label: str
    argv: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    connect: bool = False  # hold the first answer on each new connection too
    samples_ms: list[float] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    failures: int = 0

    @property
    def median(self) -> float | None:
        return stats.median(self.samples_ms) if self.samples_ms else None


@dataclass
class Result:
    rows: list[Row]
    runs: int
    latency_ms: float
    connect_ms: float
    compared: str  # the earlier build's commit, "" when none was measured

    def median(self, key: str) -> float | None:
        row = self.row(key)
        return None if row is None else row.median

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)


def scenarios(aws_goal: tuple[int, int]) -> list[tuple[str, str, dict[str, int], bool]]:
    """Key, label, references and whether connections cost their set-up too."""
    sm, ssm = aws_goal
    many = f"{sm} SM + {ssm} SSM"
    return [
        ("sm1", "1 SM", {SM: 1}, False),
        ("aws40", many, {SM: sm, SSM: ssm}, False),
        ("google1", "1 Google", {GOOGLE: 1}, False),
        ("sm1-connect", "1 SM, new connections", {SM: 1}, True),
        ("aws40-connect", f"{many}, new connections", {SM: sm, SSM: ssm}, True),
        ("google1-connect", "1 Google, new connections", {GOOGLE: 1}, True),
        # As many Google references as SM ones: every kind holds that many secrets.
        ("google-many-connect", f"{sm} Google, new connections", {GOOGLE: sm}, True),
    ]


def rows_for(subjects: Subjects, emulators: Emulators, aws_goal: tuple[int, int]) -> list[Row]:
    py = subjects.clean_python
    rows = [
        Row("import-boto3", '`python -I -c "import boto3"`', [py, "-I", "-c", "import boto3"]),
        Row(
            "import-google",
            "`python -I -c` importing google-auth and urllib3",
            [py, "-I", "-c", GOOGLE_IMPORT],
        ),
    ]
    builds = [("this", "this build", py)]
    if subjects.earlier_python:
        builds.append(("earlier", "earlier build", subjects.earlier_python))
    for key, label, counts, connect in scenarios(aws_goal):
        if not all(emulators.available(kind) for kind in counts):
            continue
        for build, build_label, python in builds:
            rows.append(
                Row(
                    f"{build}-{key}",
                    f"{build_label}: `secrets-init -- true`, {label}",
                    [python, "-I", "-m", "secrets_init", "--", "true"],
                    counts,
                    connect,
                )
            )
    return rows


def run(
    subjects: Subjects,
    emulators: Emulators,
    aws_goal: tuple[int, int],
    runs: int,
    latency: float,
    warmup: int = 1,
) -> Result:
    rows = rows_for(subjects, emulators, aws_goal)
    connect = CONNECT_ROUND_TRIPS * latency
    envs = {
        row.key: clean_env(**emulators.env(), **reference_env(emulators, row.counts))
        for row in rows
    }
    emulators.set_delay(latency)
    try:
        for round_number in range(warmup + runs):
            for row in rows:
                if emulators.proxy is not None:
                    emulators.proxy.reset()
                    emulators.proxy.connect_delay = connect if row.connect else 0.0
                if emulators.google is not None:
                    emulators.google.connect_delay = connect if row.connect else 0.0
                elapsed = spawn_and_wait(row.argv, envs[row.key])
                if elapsed is None:
                    row.failures += 1
                elif round_number >= warmup:
                    row.samples_ms.append(elapsed)
                    if emulators.proxy is not None and (row.counts.get(SM) or row.counts.get(SSM)):
                        row.in_flight.append(emulators.proxy.max_in_flight)
    finally:
        emulators.set_delay(0.0)
        if emulators.proxy is not None:
            emulators.proxy.connect_delay = 0.0
        if emulators.google is not None:
            emulators.google.connect_delay = 0.0
    return Result(rows, runs, latency * 1000, connect * 1000, subjects.earlier_commit)


def section(result: Result) -> list[str]:
    out = [
        "",
        f"## 7. Whole runs, {result.latency_ms:.0f} ms added to every request",
        "",
        f"{result.runs} interleaved runs per row after a warm-up round, spawned and reaped as "
        "in part 1: the time a pod waits, from the spawn of the interpreter to the exit. "
        "*New connections* rows also hold the first answer on each new connection "
        f"{result.connect_ms:.0f} ms ({CONNECT_ROUND_TRIPS} round trips: TCP's handshake and "
        "TLS 1.3's), as a real endpoint would. The module runs from the venv without import "
        "hooks (part 1)"
        + (
            f"; *earlier build* is the same command from a checkout of `{result.compared}` "
            "(`--compare-with`), measured in the same rounds."
            if result.compared
            else "."
        ),
        "",
        "| command | median ms | p10 | p90 | beyond `import boto3`, ms | x earlier build "
        "| most calls in flight, lowest-highest run | failed runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    boto3 = result.median("import-boto3")
    for row in result.rows:
        if not row.samples_ms:
            out.append(f"| {row.label} | no successful run | | | | | | {row.failures} |")
            continue
        spread = stats.spread(row.samples_ms)
        earlier = (
            result.median(row.key.replace("this-", "earlier-", 1))
            if row.key.startswith("this-")
            else None
        )
        beyond = "" if boto3 is None or row.key == "import-boto3" else f"{row.median - boto3:.0f}"
        ratio = stats.ratio(spread.median, earlier)
        flight = f"{min(row.in_flight)}-{max(row.in_flight)}" if row.in_flight else ""
        out.append(
            f"| {row.label} | {spread.median:.0f} | {spread.p10:.0f} | {spread.p90:.0f} "
            f"| {beyond} | {'' if ratio is None else f'{ratio:.2f}x'} | {flight} "
            f"| {row.failures} |"
        )
    return out
