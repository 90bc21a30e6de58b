"""Part 3b (section 5 of the report): where a resolution's time goes, phase by phase.

See bench.trace for the phases. Each scenario runs `python -I -m bench.trace`
a few times against the same latency proxy as part 3; the run with the
median resolution time is shown as a timeline, and each phase is summarised
as the median over the runs. Phases on different threads overlap, so they do
not add up to the total: the timeline shows what waited on what. One more
run with `-X importtime` names the biggest SDK imports (that flag slows every
import, so its numbers are only compared with each other).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field

from bench import stats
from bench.emulators import SM, SSM, Emulators
from bench.resolution import reference_env
from bench.subjects import Subjects, clean_env

# The imports the issue names, in the order they nest.
WATCHED_IMPORTS = (
    "boto3",
    "s3transfer",
    "botocore.session",
    "botocore.client",
    "botocore.waiter",
    "botocore.docs",
    "urllib3",
    "urllib3.http2",
    "importlib.metadata",
)

# Phase summaries: label, and how a span's `what` is matched.
PHASES = (
    ("interpreter start", "interpreter start"),
    ("secrets_init imports", "secrets_init imports"),
    ("provider and SDK imports", "import the "),
    ("botocore session", "botocore session"),
    ("credential lookup", "credential lookup"),
    ("client creation, all clients", "client "),
    ("request signing, all requests", "signing"),
    ("HTTP exchanges, wall time with one in flight", "HTTP exchange"),
    ("parsing answers", "parsing an answer"),
    ("resolution, to the last answer", "resolution"),
)


@dataclass
class Traced:
    spans: list[tuple[str, str, float, float]]  # thread, what, start ms, end ms from spawn
    in_flight: int  # the most calls the proxy was answering at once
    page_faults: int  # during the resolution: memory it touched for the first time

    @property
    def resolution_ms(self) -> float:
        return next(end - start for _, w, start, end in self.spans if w.startswith("resolution"))

    def phase_ms(self, prefix: str) -> float:
        """Wall time during which some span of the phase was running (overlaps counted once)."""
        busy, end = 0.0, float("-inf")
        for start, stop in sorted((s, e) for _, w, s, e in self.spans if w.startswith(prefix)):
            if stop > end:
                busy += stop - max(start, end)
                end = stop
        return busy

    def clients(self) -> dict[str, float]:
        return {w: e - s for _, w, s, e in self.spans if w.startswith("client ")}


@dataclass
class Case:
    key: str
    label: str
    counts: dict[str, int]
    python: str  # the interpreter of the build it runs (this build's, or an earlier one's)
    earlier: bool = False  # an earlier build's, measured alongside (--compare-with)
    runs: list[Traced] = field(default_factory=list)
    imports_ms: dict[str, float] = field(default_factory=dict)  # under -X importtime
    error: str = ""

    @property
    def median_run(self) -> Traced | None:
        if not self.runs:
            return None
        ordered = sorted(self.runs, key=lambda run: run.resolution_ms)
        return ordered[len(ordered) // 2]

    def phase_median(self, prefix: str) -> float | None:
        if not self.runs:
            return None
        return stats.median([run.phase_ms(prefix) for run in self.runs])

    def client_medians(self) -> dict[str, float]:
        names = sorted({name for run in self.runs for name in run.clients()})
        return {
            name: stats.median([run.clients()[name] for run in self.runs if name in run.clients()])
            for name in names
        }


def cases(subjects: Subjects, aws_goal: tuple[int, int]) -> list[Case]:
    """One SM reference and the many-references case, for this build and the earlier one."""
    sm, ssm = aws_goal
    builds = [("", subjects.clean_python, False)]
    if subjects.earlier_python:
        builds.append((", earlier build", subjects.earlier_python, True))
    return [
        Case(f"{key}{'-earlier' if earlier else ''}", f"{label}{suffix}", counts, python, earlier)
        for key, label, counts in (
            ("one-sm", "1 SM", {SM: 1}),
            ("aws-goal", f"{sm} SM + {ssm} SSM", {SM: sm, SSM: ssm}),
        )
        for suffix, python, earlier in builds
    ]


def run(emulators: Emulators, found: list[Case], repeats: int, latency: float) -> list[Case]:
    """Every case `repeats` times, round by round, so noise hits every case alike."""
    if emulators.proxy is None:
        for case in found:
            case.error = "moto unavailable"
        return found
    envs = {
        case.key: clean_env(**emulators.env(), **reference_env(emulators, case.counts))
        for case in found
    }
    emulators.set_delay(latency)
    try:
        for _ in range(max(1, repeats)):
            for case in found:
                if case.error:
                    continue
                traced, error = _trace(case.python, emulators, envs[case.key])
                if traced is None:
                    case.error = error
                else:
                    case.runs.append(traced)
        for case in found:
            if not case.error:
                case.imports_ms = _imports(case.python, envs[case.key])
    finally:
        emulators.set_delay(0.0)
    return found


def _trace(python: str, emulators: Emulators, env: dict[str, str]) -> tuple[Traced | None, str]:
    assert emulators.proxy is not None
    emulators.proxy.reset()
    spawned = time.monotonic()
    done = subprocess.run(
        [python, "-I", "-m", "bench.trace"],
        env={**env, "BENCH_SPAWNED": repr(spawned)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return None, f"exit {done.returncode}: {lines[-1] if lines else 'no output'}"
    document = json.loads(done.stdout)
    origin = document["spawned"]
    spans = [
        (thread, what, (start - origin) * 1000, (end - origin) * 1000)
        for thread, what, start, end in document["spans"]
    ]
    return Traced(spans, emulators.proxy.max_in_flight, document["page_faults"]), ""


def _imports(python: str, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [python, "-I", "-X", "importtime", "-m", "bench.trace"],
        env={**env, "BENCH_SPAWNED": repr(time.monotonic())},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|", 2)
        if name.strip() in WATCHED_IMPORTS:
            found[name.strip()] = int(cumulative) / 1000
    return found


def section(found: list[Case], latency_ms: float) -> list[str]:
    out = [
        "",
        f"## 5. Where a resolution's time goes, {latency_ms:.0f} ms added to every request",
        "",
        "`python -I -m bench.trace` does the resolving child's work in one process (no fork): "
        "scan the environment, fetch every reference through the providers. It times the "
        "phases on the threads that run them: the provider's import (SDK included), the "
        "botocore session, the credential lookup, each client's creation (per service and "
        "region), request signing, each HTTP exchange (the added latency, connection set-up "
        "and moto's answer) and the parsing of its answer. Phase rows are medians over the "
        "runs of the wall time during which the phase was running somewhere; phases on "
        "different threads overlap, so they do not add up. *Most in flight* is the most "
        "calls the proxy answered at one moment. *Page faults* count the memory the "
        "resolution touched for the first time (each costs the kernel a page). With "
        "`--compare-with`, the *earlier build* columns are the same cases run by an earlier "
        "checkout, round by round with this build's.",
        "",
    ]
    usable = [case for case in found if case.runs]
    for case in found:
        if not case.runs:
            out.append(f"- {case.label}: {case.error or 'not measured'}")
    if not usable:
        return out
    out += [
        "| phase | " + " | ".join(f"{case.label}, ms" for case in usable) + " |",
        "| --- |" + " ---: |" * len(usable),
    ]
    for label, prefix in PHASES:
        cells = " | ".join(_fmt(case.phase_median(prefix)) for case in usable)
        out.append(f"| {label} | {cells} |")
    names = sorted({name for case in usable for name in case.client_medians()})
    for name in names:
        cells = " | ".join(_fmt(case.client_medians().get(name)) for case in usable)
        out.append(f"| {name} | {cells} |")
    in_flight = " | ".join(
        str(max(run.in_flight for run in case.runs)) + f" (median {_median_in_flight(case)})"
        for case in usable
    )
    out.append(f"| most in flight, most of all runs (median) | {in_flight} |")
    faults = " | ".join(
        f"{stats.median([float(run.page_faults) for run in case.runs]):.0f}" for case in usable
    )
    out.append(f"| page faults during the resolution (median) | {faults} |")
    imports = sorted(
        {name for case in usable for name in case.imports_ms}, key=WATCHED_IMPORTS.index
    )
    if imports:
        out += [
            "",
            "Cumulative import time of the modules the issue names, from one run under "
            "`-X importtime` (which slows every import; compare them with each other only). "
            "*-*: not imported, or imported through `importlib.import_module`, which "
            "`-X importtime` does not time (the AWS providers import `botocore.session` so); "
            "`botocore.docs` and `urllib3.http2` near 0: their `__init__` was left out:",
            "",
            "| module | " + " | ".join(f"{case.label}, ms" for case in usable) + " |",
            "| --- |" + " ---: |" * len(usable),
        ]
        for name in WATCHED_IMPORTS:
            cells = " | ".join(_fmt(case.imports_ms.get(name)) for case in usable)
            out.append(f"| `{name}` | {cells} |")
    for case in (case for case in usable if not case.earlier):
        median = case.median_run
        assert median is not None
        out += [
            "",
            f"Timeline of the median run, {case.label} (ms from the spawn):",
            "",
            "| starts | takes | thread | phase |",
            "| ---: | ---: | --- | --- |",
        ]
        out += [
            f"| {start:.1f} | {end - start:.1f} | {thread} | {what} |"
            for thread, what, start, end in median.spans
        ]
    return out


def _median_in_flight(case: Case) -> str:
    return f"{stats.median([float(run.in_flight) for run in case.runs]):g}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit("run through `python -m bench`")
