"""`python -m bench.refresh [--quick] [--refreshes N]`: what rotation (`--refresh`) costs.

secrets-init (the module, from the clean venv of `bench.subjects`) supervises
`sleep` with 20 Secrets Manager and 20 Parameter Store references in one
region, behind the proxy in front of moto (50 ms added to every request), at
`--refresh 1s`, with nothing changing. Its JSON debug log gives each
refresh's wall time (PID 1 forking the refresh child to PID 1 reading its
report). Measured from outside:

- CPU per refresh: the growth of PID 1's cutime + cstime (the refresh
  children it reaped; the program, still running, is not in it) per refresh;
- API calls per refresh, counted at the proxy, against the batched minimum
  (BatchGetSecretValue takes 20 secrets, GetParameters 10 parameters);
- PID 1's VmRSS after the first refresh and after N more, and its voluntary
  context switches per refresh (its wake-ups: the timer, the report, the
  child's exit).

The AWS calls per pod and hour at `--refresh 5m`, and their price, follow
from the calls per refresh. The section is written into docs/benchmarks.md
between its markers (`python -m bench` keeps it when it rewrites the file).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import procs, sections, subjects
from testing.aws_proxy import AwsProxy
from testing.moto import DUMMY_CREDENTIALS, Aws, start_moto

BEGIN = "<!-- bench.refresh: begin -->"
END = "<!-- bench.refresh: end -->"
SM_BATCH, SSM_BATCH = 20, 10
SM_PRICE = (
    0.05 / 10_000
)  # USD per Secrets Manager API call (aws.amazon.com/secrets-manager/pricing)
SSM_HIGHER_PRICE = 0.05 / 10_000  # Parameter Store higher throughput; standard throughput: free
HOURS_PER_MONTH = 730


@dataclass
class Result:
    secrets: int
    parameters: int
    latency_ms: float
    refreshes: int = 0
    wall_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    rss_start_kib: int = 0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    switches: int = 0

    @property
    def minimum_calls(self) -> dict[str, int]:
        return {
            "BatchGetSecretValue": math.ceil(self.secrets / SM_BATCH),
            "GetParameters": math.ceil(self.parameters / SSM_BATCH),
        }


def measure(refreshes: int, latency: float, workdir: Path) -> Result:
    found = subjects.find(workdir)
    result = Result(secrets=20, parameters=20, latency_ms=latency * 1000)
    with start_moto() as moto, AwsProxy(moto.url) as proxy:
        aws = Aws(moto.url, "bench-refresh")
        references = {}
        for index in range(result.secrets):
            aws.secret(f"s{index:02d}", f"value-{index}")
            references[f"BENCH_SM_{index:02d}"] = aws.sm_ref(f"s{index:02d}")
        for index in range(result.parameters):
            aws.parameter(f"p{index:02d}", f"value-{index}", kind="SecureString")
            references[f"BENCH_SSM_{index:02d}"] = aws.ssm_ref(f"p{index:02d}")
        env = subjects.clean_env(
            AWS_ENDPOINT_URL=proxy.url,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE="/nonexistent/aws-config",
            AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
            **DUMMY_CREDENTIALS,
            **references,
        )
        proxy.delay = latency
        log_path = workdir / "refresh.log"
        argv = [*found.module(), "--refresh", "1s", "--log-format", "json", "--log-level", "debug"]
        with open(log_path, "wb") as log:
            init = subprocess.Popen(
                [*argv, "--", "sleep", "infinity"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        try:
            _wait_for(log_path, "resolved ", 1, init)
            result.rss_start_kib = procs.rss_kib(init.pid) or 0
            _wait_for(log_path, "refresh: no secret changed", 1, init)
            cpu_before, switches_before = _children_cpu(init.pid), _switches(init.pid)
            result.rss_before_kib = procs.rss_kib(init.pid) or 0
            proxy.reset()
            _wait_for(log_path, "refresh: no secret changed", 1 + refreshes, init)
            result.rss_after_kib = procs.rss_kib(init.pid) or 0
            result.cpu_s = _children_cpu(init.pid) - cpu_before
            result.switches = _switches(init.pid) - switches_before
            result.calls = dict(proxy.counts)
        finally:
            os.killpg(init.pid, signal.SIGTERM)
            init.wait(timeout=30)
        result.wall_ms, counted = _refresh_times(log_path)
        result.refreshes = refreshes
        if counted < refreshes:
            raise RuntimeError(f"only {counted} refreshes in the log")
    return result


def _wait_for(log: Path, text: str, count: int, init: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60 + 2 * count
    while log.read_text(errors="replace").count(text) < count:
        if init.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"secrets-init: no {count}x {text!r}:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)


def _children_cpu(pid: int) -> float:
    """cutime + cstime: CPU of the children PID 1 has reaped (the refresh children)."""
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    fields = raw[raw.rfind(b")") + 2 :].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def _switches(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def _refresh_times(log: Path) -> tuple[list[float], int]:
    """Wall time of each refresh after the first, from its start line to PID 1's verdict."""
    times, started = [], None
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        stamp = time.mktime(time.strptime(record["time"][:19], "%Y-%m-%dT%H:%M:%S"))
        moment = stamp + int(record["time"][20:23]) / 1000
        if record["msg"].startswith("refreshing secrets in child"):
            started = moment
        elif record["msg"] == "refresh: no secret changed" and started is not None:
            times.append((moment - started) * 1000)
            started = None
    return times[1:], len(times) - 1


def markdown(result: Result) -> str:
    per_refresh = {api: count / result.refreshes for api, count in result.calls.items()}
    minimum = result.minimum_calls
    sm_hour = 12 * per_refresh.get("BatchGetSecretValue", 0)
    ssm_hour = 12 * per_refresh.get("GetParameters", 0)
    sm_month = sm_hour * HOURS_PER_MONTH
    ssm_month = ssm_hour * HOURS_PER_MONTH
    growth = result.rss_after_kib - result.rss_before_kib
    calls = ", ".join(f"{per_refresh[api]:g} {api}" for api in sorted(per_refresh)) or "none"
    least = ", ".join(f"{count} {api}" for api, count in sorted(minimum.items()))
    rows = [
        ("refreshes measured", f"{result.refreshes}"),
        ("wall time of a refresh, median ms", _median(result.wall_ms)),
        (
            "CPU time of a refresh (the refresh child), ms",
            f"{1000 * result.cpu_s / result.refreshes:.0f}",
        ),
        ("API calls per refresh", f"{calls} (minimum: {least})"),
        ("PID 1 RSS after the first resolution, KiB", f"{result.rss_start_kib}"),
        ("PID 1 RSS after the first refresh, KiB", f"{result.rss_before_kib}"),
        (f"PID 1 RSS after {result.refreshes} more, KiB", f"{result.rss_after_kib} ({growth:+d})"),
        (
            "PID 1 wake-ups (voluntary context switches) per refresh",
            f"{result.switches / result.refreshes:.1f}",
        ),
    ]
    cost = [
        ("Secrets Manager (BatchGetSecretValue)", sm_hour, sm_month, f"${sm_month * SM_PRICE:.4f}"),
        (
            "Secrets Manager, were each secret of a batch billed as a call",
            sm_hour * result.secrets,
            sm_month * result.secrets,
            f"${sm_month * result.secrets * SM_PRICE:.4f}",
        ),
        ("Parameter Store, standard throughput (GetParameters)", ssm_hour, ssm_month, "$0 (free)"),
        (
            "Parameter Store, higher throughput",
            ssm_hour,
            ssm_month,
            f"${ssm_month * SSM_HIGHER_PRICE:.4f}",
        ),
    ]
    lines = [
        BEGIN,
        "## 6. Rotation: what a refresh costs",
        "",
        f"`python -m bench.refresh` (see its docstring): {result.secrets} Secrets Manager and "
        f"{result.parameters} Parameter Store references in one region, {result.latency_ms:g} ms "
        "added to every request, `--refresh 1s`, nothing changing, the module from a clean venv "
        "supervising `sleep`. CPU is what PID 1's reaped refresh children used (cutime + "
        "cstime), per refresh; RSS is PID 1's own VmRSS.",
        "",
        "| measure | value |",
        "| --- | ---: |",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        "AWS API calls per pod at `--refresh 5m` (12 refreshes an hour; the jitter averages out), "
        f"for these 40 references, from the calls per refresh above; a month is {HOURS_PER_MONTH} "
        "hours. Prices: Secrets Manager $0.05 per 10,000 API calls; Parameter Store "
        "GetParameters free at standard throughput, $0.05 per 10,000 at higher throughput. "
        "The price page counts API calls and BatchGetSecretValue is one; the second row is "
        "the bound should a batch be billed per secret. A restart costs no extra call: the "
        "refresh child that found the change becomes the new program.",
        "",
        "| API | calls per pod per hour | per month | cost per pod per month |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {api} | {hour:g} | {month:,.0f} | {price} |" for api, hour, month, price in cost),
        END,
    ]
    return "\n".join(lines) + "\n"


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}" if values else "-"


def write_section(path: Path, section: str) -> None:
    """Put `section` between the markers of `path`, or at its end."""
    sections.write(path, BEGIN, END, section)


def kept_section(path: Path) -> str:
    """The section as last measured, for `python -m bench` to keep when it rewrites the file."""
    return sections.kept(path, BEGIN, END)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.refresh", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 refreshes, for a smoke test")
    parser.add_argument("--refreshes", type=int, help="refreshes measured (default 100)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added per request")
    parser.add_argument("--out", type=Path, default=subjects.ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    refreshes = args.refreshes or (5 if args.quick else 100)
    with tempfile.TemporaryDirectory(prefix="secrets-init-bench-refresh-") as workdir:
        result = measure(refreshes, args.latency_ms / 1000, Path(workdir))
    section = markdown(result)
    write_section(args.out, section)
    sys.stdout.write(section)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
