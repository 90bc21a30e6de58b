"""The admission webhook under load: AdmissionReviews per second, p50 and p99 latency.

`python -m bench.webhook [--quick]` starts the webhook as a real HTTPS
process (a throwaway CA; ConfigMap/Secret reads go to the small API server
of testing/kube_api.py), and Debian's docker-registry holding one image pushed by
skopeo. `hey` sends the same AdmissionReview over 50 keep-alive connections,
for two pods: one whose container sets `command` (no registry), and one that
needs the image's ENTRYPOINT/CMD, which the webhook has cached after one
lookup. The registry's own access log counts its manifest requests, so the
table shows that the image was looked up once however many reviews asked.

Nothing here is a test: no timing decides whether the suite passes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testing import pods
from testing.kube_api import populated_api
from testing.oci import Layout, Platform
from testing.registry import DockerRegistry, docker_config
from testing.tls import CertificateAuthority
from testing.webhook_process import Webhook, serving

CONNECTIONS = 50
OFFERED = 500  # the goal, as an offered rate: latency at that load
MUTATED = 'secrets_init_webhook_reviews_total{outcome="mutated"}'
TOOLS = ("hey", "docker-registry", "skopeo", "htpasswd")


@dataclass(frozen=True)
class Row:
    scenario: str
    load: str  # "as fast as it answers", or the offered rate
    reviews: int
    per_second: float
    p50_ms: float
    p99_ms: float
    failed: int  # non-200 answers, or answers that were not the expected mutation
    registry_requests: int | None  # manifest GETs the registry saw during the scenario


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _review(pod: dict[str, Any]) -> bytes:
    return json.dumps(pods.review(pod, uid="bench")).encode()


def _hey(
    url: str, body: Path, total: int, rate: int | None
) -> tuple[float, float, float, dict[int, int]]:
    """`rate`: reviews per second offered in all (hey's -q is per connection); None: no limit."""
    limit = ["-q", str(rate / CONNECTIONS)] if rate else []
    done = subprocess.run(
        ["hey", "-n", str(total), "-c", str(CONNECTIONS), *limit, "-m", "POST",
         "-T", "application/json", "-D", str(body), url],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )  # fmt: skip
    text = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    p50 = float(re.search(r"50% in ([\d.]+) secs", text).group(1))  # type: ignore[union-attr]
    p99 = float(re.search(r"99% in ([\d.]+) secs", text).group(1))  # type: ignore[union-attr]
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)}
    return rate, p50 * 1000, p99 * 1000, codes


@contextmanager
def _stack(work: Path) -> Iterator[tuple[Webhook, DockerRegistry, str]]:
    ca = CertificateAuthority(work / "ca")
    layout = Layout(work / "layout")
    layout.add("1.0", Platform(entrypoint=("/app/server",), cmd=("--port", "8080")))
    registry = DockerRegistry(ca, work / "registry")
    try:
        registry.push(layout.directory, "1.0", "apps/orders")
        with populated_api(ca) as api:
            api.add_pull_secret("orders", "regcred", docker_config(registry.host))
            with serving(ca, api, work / "webhook") as webhook:
                yield webhook, registry, f"{registry.host}/apps/orders:1.0"
    finally:
        registry.stop()


def run(total: int) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="secrets-init-bench-webhook-") as directory:
        work = Path(directory)
        with _stack(work) as (webhook, registry, image):
            with_command = pods.pod(
                pods.container(image=image, command=["/app/server"], env=pods.env(DB=pods.SM))
            )
            cached = pods.pod(pods.container(image=image, env=pods.env(DB=pods.SM)))
            cached["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
            url = f"https://127.0.0.1:{webhook.port}/mutate"
            scenarios = (
                ("pod with command", with_command),
                ("pod needing a cached registry lookup", cached),
            )
            for name, pod in scenarios:
                body = work / "review.json"
                body.write_bytes(_review(pod))
                first = webhook.review(pods.review(pod, uid="bench"))  # warms the cache
                assert first["allowed"] and "patch" in first, first
                for offered in (None, OFFERED):
                    before = registry.requests("/manifests/")
                    mutated_before = webhook.metric(MUTATED)
                    per_second, p50, p99, codes = _hey(url, body, total, offered)
                    mutated = webhook.metric(MUTATED) - mutated_before
                    failed = total - min(codes.get(200, 0), int(mutated))
                    lookups = registry.requests("/manifests/") - before
                    load = f"{offered}/s offered" if offered else "as fast as it answers"
                    rows.append(Row(name, load, total, per_second, p50, p99, failed, lookups))
            whole = registry.requests("/manifests/")
            rows.append(Row("(the registry, over the whole run)", "", 0, 0, 0, 0, 0, whole))
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| pod | load | reviews | reviews/s | p50 ms | p99 ms | failed | registry manifest GETs |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if not row.reviews:
            lines.append(f"| {row.scenario} | | | | | | | {row.registry_requests} |")
            continue
        lines.append(
            f"| {row.scenario} | {row.load} | {row.reviews} | {row.per_second:.0f} | "
            f"{row.p50_ms:.1f} | {row.p99_ms:.1f} | {row.failed} | {row.registry_requests} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500 reviews per pod, not 20000")
    parser.add_argument("--reviews", type=int, help="reviews per pod")
    args = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        print(f"not installed: {', '.join(missing)} (scripts/bench installs them)", file=sys.stderr)
        return 1
    total = args.reviews or (500 if args.quick else 20_000)
    print(f"{os.cpu_count()} cores, {CONNECTIONS} connections", file=sys.stderr)
    print(markdown(run(total)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
