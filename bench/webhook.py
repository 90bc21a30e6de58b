"""The admission webhook under load: AdmissionReviews per second, p50 and p99 latency.

`python -m bench.webhook [--quick] [--compare-with DIR]` starts the webhook as
a real HTTPS process (a throwaway CA; ConfigMap/Secret reads go to the small
API server of testing/kube_api.py), and Debian's docker-registry holding one
image pushed by skopeo. testing/load.py, in a process of its own, sends the
same AdmissionReview over 50 keep-alive connections for two pods: one whose
container sets `command` (no registry), and one that needs the image's
ENTRYPOINT/CMD, which the webhook has cached after one lookup. Two loads:
closed loop (each connection sends when answered: the most it answers), and
open loop at 500 reviews/s spread evenly over the connections, latency counted
from when each review was due (a stall shows in every review it delays). The
registry's own access log counts its manifest requests, so the table shows
that the image was looked up once however many reviews asked.

With `--compare-with DIR` (a checkout of an earlier commit), that checkout's
webhook runs too, against the same API server and registry, each load
measured on one build and then the other, so both see the same machine.

It writes its section of docs/benchmarks.md (between its markers, `--out`),
which `python -m bench` keeps. Nothing here is a test: no timing decides
whether the suite passes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import sections
from testing import pods
from testing.kube_api import populated_api
from testing.oci import Layout, Platform
from testing.process import ROOT
from testing.registry import DockerRegistry, docker_config
from testing.tls import CertificateAuthority
from testing.webhook_process import Webhook, serving

CONNECTIONS = 50
OFFERED = 500  # the goal, as an offered rate: latency at that load
GOAL_P99_MS = 25.0
MUTATED = 'secrets_init_webhook_reviews_total{outcome="mutated"}'
TOOLS = ("docker-registry", "skopeo", "htpasswd")
CLOSED_LOOP = f"closed loop, {CONNECTIONS} connections"
OPEN_LOOP = f"open loop, {OFFERED}/s over {CONNECTIONS} connections"
ONE_CONNECTION = "closed loop, 1 connection"
# (label, connections, offered rate or None for closed loop)
LOADS = (
    (CLOSED_LOOP, CONNECTIONS, None),
    (OPEN_LOOP, CONNECTIONS, OFFERED),
    (ONE_CONNECTION, 1, None),
)
THIS_BUILD = "this build"
EARLIER_BUILD = "earlier build"
BEGIN = "<!-- bench.webhook: begin -->"
END = "<!-- bench.webhook: end -->"


@dataclass(frozen=True)
class Row:
    scenario: str
    build: str
    load: str
    reviews: int
    per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_us: float  # the webhook process's CPU time (user + system) per review
    failed: int  # non-200 answers, or answers that were not the expected mutation
    registry_requests: int | None  # manifest GETs the registry saw during the scenario


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _review(pod: dict[str, Any]) -> bytes:
    return json.dumps(pods.review(pod, uid="bench")).encode()


def _load(
    url: str, body: Path, ca: Path, total: int, connections: int, rate: int | None
) -> dict[str, Any]:
    """testing/load.py in a process of its own; `rate`: reviews per second offered in all,
    None: closed loop."""
    done = subprocess.run(
        [sys.executable, "-m", "testing.load", url, "--body", str(body),
         "--requests", str(total), "--connections", str(connections), "--cafile", str(ca),
         "--expect", '"patch"', *(["--rate", str(rate)] if rate else [])],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        cwd=ROOT,
    )  # fmt: skip
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


@contextmanager
def _stack(
    work: Path, roots: dict[str, Path]
) -> Iterator[tuple[dict[str, Webhook], DockerRegistry, str, Path]]:
    ca = CertificateAuthority(work / "ca")
    layout = Layout(work / "layout")
    layout.add("1.0", Platform(entrypoint=("/app/server",), cmd=("--port", "8080")))
    registry = DockerRegistry(ca, work / "registry")
    try:
        registry.push(layout.directory, "1.0", "apps/orders")
        with populated_api(ca) as api, ExitStack() as running:
            api.add_pull_secret("orders", "regcred", docker_config(registry.host))
            webhooks = {
                build: running.enter_context(serving(ca, api, work / build, root=root))
                for build, root in roots.items()
            }
            yield webhooks, registry, f"{registry.host}/apps/orders:1.0", ca.path
    finally:
        registry.stop()


def run(total: int, earlier: Path | None = None) -> list[Row]:
    rows = []
    roots = {THIS_BUILD: ROOT, **({EARLIER_BUILD: earlier} if earlier else {})}
    with tempfile.TemporaryDirectory(prefix="secrets-init-bench-webhook-") as directory:
        work = Path(directory)
        with _stack(work, roots) as (webhooks, registry, image, ca):
            with_command = pods.pod(
                pods.container(image=image, command=["/app/server"], env=pods.env(DB=pods.SM))
            )
            cached = pods.pod(pods.container(image=image, env=pods.env(DB=pods.SM)))
            cached["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
            scenarios = (
                ("pod with command", with_command),
                ("pod needing a cached registry lookup", cached),
            )
            for name, pod in scenarios:
                body = work / "review.json"
                body.write_bytes(_review(pod))
                for webhook in webhooks.values():
                    first = webhook.review(pods.review(pod, uid="bench"))  # warms the cache
                    assert first["allowed"] and "patch" in first, first
                for load, connections, offered in LOADS:
                    for build, webhook in webhooks.items():
                        url = f"https://127.0.0.1:{webhook.port}/mutate"
                        before = registry.requests("/manifests/")
                        mutated_before = webhook.metric(MUTATED)
                        cpu_before = _cpu_seconds(webhook.process.pid)
                        got = _load(url, body, ca, total, connections, offered)
                        cpu = (_cpu_seconds(webhook.process.pid) - cpu_before) / total * 1e6
                        mutated = int(webhook.metric(MUTATED) - mutated_before)
                        answered = got["statuses"].get("200", 0)
                        failed = total - min(answered, mutated, got["matched"])
                        lookups = registry.requests("/manifests/") - before
                        rows.append(
                            Row(name, build, load, total, got["per_second"], got["p50_ms"],
                                got["p99_ms"], got["max_ms"], cpu, failed, lookups)
                        )  # fmt: skip
            whole = registry.requests("/manifests/")
            rows.append(Row("(the registry, over the run)", "", "", 0, 0, 0, 0, 0, 0, 0, whole))
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| pod | build | load | reviews | reviews/s | p50 ms | p99 ms | max ms "
        "| webhook CPU µs/review | failed | registry manifest GETs |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if not row.reviews:
            lines.append(f"| {row.scenario} | | | | | | | | | | {row.registry_requests} |")
            continue
        lines.append(
            f"| {row.scenario} | {row.build} | {row.load} | {row.reviews} | "
            f"{row.per_second:.0f} | {row.p50_ms:.1f} | {row.p99_ms:.1f} | {row.max_ms:.1f} | "
            f"{row.cpu_us:.0f} | {row.failed} | {row.registry_requests} |"
        )
    return "\n".join(lines) + "\n"


def _met(row: Row) -> bool:
    return row.per_second >= OFFERED * 0.99 and row.failed == 0 and row.p99_ms < GOAL_P99_MS


def section(rows: list[Row]) -> str:
    goals = [
        row for row in rows if row.build == THIS_BUILD and row.load == OPEN_LOOP and row.reviews
    ]
    verdicts = "; ".join(
        f"{row.scenario}: {row.per_second:.0f}/s answered, p99 {row.p99_ms:.1f} ms, "
        + ("**met**" if _met(row) else "**missed**")
        for row in goals
    )
    lines = [
        BEGIN,
        "## 8. The admission webhook under load",
        "",
        "`python -m bench.webhook` (see its docstring): the webhook process, keep-alive HTTPS "
        "connections from testing/load.py (a Python asyncio load generator in a process of its "
        f"own, on the same {os.cpu_count()} cores). *Closed loop*: each connection sends its "
        "next review when the last is answered, so reviews/s is the most it answers, and with "
        f"{CONNECTIONS} connections latency is mostly their queue. *Open loop*: {OFFERED} "
        f"reviews/s offered, each connection sending every {CONNECTIONS / OFFERED * 1000:.0f} ms, "
        "the connections spread evenly over that time; latency counts from when a review was "
        "due, not when it was sent, so a stall counts in every review it delays (as wrk2 "
        "measures). *1 connection*: one thread in the webhook, none to contend with for the "
        "GIL; its CPU per review beside the 50-connection row's is what the threads cost. "
        "*Webhook CPU*: the webhook process's user + system time over the row, per review "
        "(what a busy machine disturbs least). *Earlier build*: the webhook before the changes "
        "measured here (`--compare-with`), against the same API server and registry, each load "
        "on one build then the other. *Failed*: answers that were not a 200 with the expected "
        "patch.",
        "",
        markdown(rows).rstrip("\n"),
        "",
        f"Goal (issue 14): at {OFFERED} reviews/s over {CONNECTIONS} connections, "
        f"p99 < {GOAL_P99_MS:g} ms. {verdicts}.",
        END,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500 reviews per row, not 10000")
    parser.add_argument("--reviews", type=int, help="reviews per row")
    parser.add_argument(
        "--compare-with", type=Path, metavar="DIR", help="a checkout of an earlier commit"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        print(f"not installed: {', '.join(missing)} (scripts/bench installs them)", file=sys.stderr)
        return 1
    total = args.reviews or (500 if args.quick else 10_000)
    print(f"{os.cpu_count()} cores, {CONNECTIONS} connections", file=sys.stderr)
    rows = run(total, args.compare_with)
    if not args.no_write:
        sections.write(args.out, BEGIN, END, section(rows))
    print(markdown(rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
