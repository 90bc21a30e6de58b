"""docs/benchmarks.md and docs/benchmarks.png from one run's results.

Every goal is judged from numbers of this run only, mostly as a ratio to
another command measured alongside; a goal whose inputs are missing (a
provider not written yet, the binary not built) says so instead of passing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import memory, profile, reaping, resolution, startup, stats, wholerun
from bench.machine import Machine

MIB = 1024


@dataclass
class Run:
    machine: Machine
    load_after: tuple[float, float, float]
    elapsed_s: float
    command: str
    quick: bool
    startup: startup.Result
    memory: list[memory.Row]
    resolution: resolution.Result
    phases: list[profile.Case]
    whole: wholerun.Result
    reaping: list[reaping.Row]
    orphans: int


@dataclass
class Goal:
    what: str
    source: str
    target: str
    measured: str
    met: bool | None  # None: could not be measured in this run


def _ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _met(met: bool | None) -> str:
    return {True: "**met**", False: "**missed**", None: "not measured"}[met]


def goals(run: Run) -> list[Goal]:
    up, res = run.startup, run.resolution
    bare = up.median("py-S")
    found: list[Goal] = []

    module = up.median("module")
    module_ratio = stats.ratio(module, bare)
    found.append(
        Goal(
            "start-up `python -I -m secrets_init -- true`",
            "#2",
            "≤ 2x `python -I -S -c pass`",
            f"{_x(module_ratio)} ({_ms(module)} vs {_ms(bare)} ms median)",
            None if module_ratio is None else module_ratio <= 2.0,
        )
    )
    for key, limit, which in (("binary-warm", 100.0, "warm"), ("binary-first", 250.0, "first")):
        value = up.median(key)
        row = up.row(key)
        found.append(
            Goal(
                f"start-up `dist/secrets-init -- true`, {which} start",
                "#6",
                f"< {limit:.0f} ms median",
                f"{_ms(value)} ms = {_x(stats.ratio(value, bare))} `python -I -S -c pass`"
                if value is not None
                else row.note,
                None if value is None else value < limit,
            )
        )
    size = up.binary_size
    found.append(
        Goal(
            "size of `dist/secrets-init`",
            "#6",
            "< 20 MiB",
            "not built" if size is None else f"{size / MIB / MIB:.1f} MiB ({size / 1e6:.1f} MB)",
            None if size is None else size < 20 * MIB * MIB,
        )
    )
    tini_rss = next((r.rss_kib for r in run.memory if r.key == "tini"), None)
    for mem in run.memory:
        if not mem.key.startswith(("module", "binary")):
            continue
        found.append(
            Goal(
                f"RSS while supervising: {mem.label}",
                "#2, #8",
                "< 12 MiB total",
                mem.note
                if mem.rss_kib is None
                else f"{mem.rss_kib / MIB:.1f} MiB in {mem.processes} process(es) "
                f"= {_x(stats.ratio(mem.rss_kib, tini_rss))} tini",
                None if mem.rss_kib is None else mem.rss_kib < 12 * MIB,
            )
        )
    aws = res.scenario("aws-goal")
    if aws is not None:
        rounds = res.rounds_beyond_import(aws)
        found.append(
            Goal(
                f"{aws.label}: wall time beyond the SDK import",
                "#3",
                f"< 4 round trips ({4 * res.latency_ms:.0f} ms)",
                _scenario_measure(aws, _beyond_import(res, aws)),
                None if rounds is None else rounds < 4,
            )
        )
        speedup = _speedup_net(res, aws)
        found.append(
            Goal(
                f"{aws.label}: against one by one",
                "#3, #8",
                "≥ 8x faster",
                _scenario_measure(
                    aws,
                    f"{_x(speedup)} beyond the import "
                    f"({_x(stats.ratio(aws.baseline_ms, aws.si_median))} including it)",
                ),
                None if speedup is None else speedup >= 8,
            )
        )
        found.append(
            Goal(
                f"{aws.label}: API calls",
                "#3",
                f"the minimum the batch sizes allow ({aws.min_calls()})",
                _scenario_measure(aws, f"{aws.si_calls} calls (one by one: {aws.baseline_calls})"),
                None if aws.si_calls is None else aws.si_calls <= aws.min_calls(),
            )
        )
    google = res.scenario("google-goal")
    if google is not None:
        rounds = res.rounds_beyond_import(google)
        found.append(
            Goal(
                f"{google.label}: wall time beyond the import",
                "#4",
                f"< 3 round trips ({3 * res.latency_ms:.0f} ms)",
                _scenario_measure(google, _beyond_import(res, google)),
                None if rounds is None else rounds < 3,
            )
        )
    found.append(_growth_goal(res))
    found += _whole_run_goals(run)
    tini = next((r for r in run.reaping if r.key == "tini"), None)
    for reaped in run.reaping:
        if not reaped.key.startswith(("module", "binary")):
            continue
        ratio = stats.ratio(reaped.total_s, tini.total_s if tini else None)
        found.append(
            Goal(
                f"{run.orphans} orphans reaped as PID 1: {reaped.label}",
                "#2, #8",
                "none left",
                reaped.note
                if reaped.total_s is None
                else f"{reaped.left} left, peak {reaped.peak_zombies} zombies, "
                f"total time {_x(ratio)} tini's",
                None if reaped.left is None or reaped.total_s is None else reaped.left == 0,
            )
        )
    return found


def _whole_run_goals(run: Run) -> list[Goal]:
    """Issue #16: whole runs against a plain `import boto3`, and this build's start-up."""
    whole, up = run.whole, run.startup
    lat = whole.latency_ms
    boto3, one, forty = (whole.median(k) for k in ("import-boto3", "this-sm1", "this-aws40"))
    earlier_one, earlier_forty = whole.median("earlier-sm1"), whole.median("earlier-aws40")
    found: list[Goal] = []

    def earlier(value: float | None, text: str) -> str:
        return "" if value is None else f"; earlier build: {text}"

    beyond = None if one is None or boto3 is None else one - boto3
    found.append(
        Goal(
            "1 SM reference, whole run",
            "#16",
            f'≤ `python -I -c "import boto3"` + {lat:.0f} ms (moonshot: < that import)',
            "not measured"
            if beyond is None or one is None
            else f"{one:.0f} ms = the import + {beyond:.0f} ms"
            + earlier(
                earlier_one,
                f"{earlier_one or 0:.0f} ms = the import + {(earlier_one or 0) - (boto3 or 0):.0f}",
            ),
            None if beyond is None else beyond <= lat,
        )
    )
    more = None if one is None or forty is None else forty - one
    earlier_more = (
        None if earlier_one is None or earlier_forty is None else earlier_forty - earlier_one
    )
    found.append(
        Goal(
            f"{_many(whole)} over 3 regions against 1 SM, whole run",
            "#16",
            f"≤ +1.5 round trips (+{1.5 * lat:.0f} ms)",
            "not measured"
            if more is None
            else f"+{more:.0f} ms = {more / lat:.2f} round trips"
            + earlier(
                earlier_more,
                f"+{earlier_more or 0:.0f} ms = {(earlier_more or 0) / lat:.2f} round trips",
            ),
            None if more is None else more <= 1.5 * lat,
        )
    )
    row = whole.row("this-aws40")
    flights = row.in_flight if row is not None else []
    found.append(
        Goal(
            f"{_many(whole)}: the batched calls in flight together",
            "#16",
            f"all {_batches(run)} at once in every run",
            "not measured"
            if not flights
            else f"{min(flights)}-{max(flights)} at once over {len(flights)} runs",
            None if not flights else min(flights) >= _batches(run),
        )
    )
    found += _startup_goals(up)
    google, earlier_google = whole.median("this-google1"), whole.median("earlier-google1")
    google_ratio = stats.ratio(google, earlier_google)
    found.append(
        Goal(
            "1 Google reference, whole run: no regression",
            "#16",
            "≤ 1.05x the earlier build (same rounds)",
            "not measured"
            if google is None
            else f"{google:.0f} ms"
            + ("" if google_ratio is None else f" = {_x(google_ratio)} the earlier build")
            + (
                ""
                if whole.median("import-google") is None
                else f"; the plain Google SDK import: {whole.median('import-google'):.0f} ms"
            ),
            None if google_ratio is None else google_ratio <= 1.05,
        )
    )
    return found


def _startup_goals(up: startup.Result) -> list[Goal]:
    """#16's start-up goal against the issue's baseline and against the same flags' interpreter.

    Each says where the floor is: `-m` imports runpy and more before the
    module's first line, so part of the ratio is no module's to cut.
    """
    module, floor, finalized = up.median("module"), up.median("runpy-exit"), up.median("runpy")
    earlier = next((row for row in up.rows if row.key == "module-earlier"), None)
    earlier_ms = earlier.spread.median if earlier and earlier.spread else None
    found: list[Goal] = []
    for key, label in (
        ("py-S", "`python -I -S -c pass` (the issue's baseline)"),
        ("py", "`python -I -c pass` (the same flags)"),
    ):
        base = up.median(key)
        ratio = stats.ratio(module, base)
        own = None if module is None or floor is None or base is None else (module - floor) / base
        found.append(
            Goal(
                "start-up `python -I -m secrets_init -- true`",
                "#16",
                f"≤ 1.8x {label}",
                f"{_x(ratio)} ({_ms(module)} vs {_ms(base)} ms median) = "
                f"floor {_x(stats.ratio(floor, base))} + {_x(own)} secrets-init's own; "
                f"floor: `-m`'s imports before the module runs, leaving by `os._exit` as "
                f"secrets-init does ({_x(stats.ratio(finalized, base))} with the interpreter's "
                "finalization)"
                + (
                    ""
                    if earlier_ms is None
                    else f"; earlier build: {_x(stats.ratio(earlier_ms, base))}"
                ),
                None if ratio is None else ratio <= 1.8,
            )
        )
    return found


def _many(whole: wholerun.Result) -> str:
    row = whole.row("this-aws40")
    return "many AWS references" if row is None else row.label.split("`, ", 1)[1]


def _batches(run: Run) -> int:
    """The batched calls of the many-references run: its API-call minimum."""
    aws = run.resolution.scenario("aws-goal")
    return 6 if aws is None else aws.min_calls()


def _growth_goal(res: resolution.Result) -> Goal:
    """From the smallest mixed N that uses all three kinds (both SDKs) to the largest."""
    mixed = [s for s in res.scenarios if s.key.startswith("mixed-") and s.n >= 3]
    what, target = "time grows with the number of batches, not with N", "<= 2x"
    if len(mixed) < 2 or mixed[0].n == mixed[-1].n:
        return Goal(what, "#8", target, "needs two mixed sizes of at least 3", None)
    small, large = mixed[0], mixed[-1]
    target = f"{small.label} to {large.label} ({large.n / small.n:g}x the references): <= 2x"
    growth = stats.ratio(large.si_median, small.si_median)
    measured = (
        f"{_x(growth)} (one by one: {_x(stats.ratio(large.baseline_ms, small.baseline_ms))}; "
        f"API calls {small.si_calls} -> {large.si_calls}; serial round trips on the network "
        f"{_ms(res.network_rounds(small), 2)} -> {_ms(res.network_rounds(large), 2)})"
    )
    for scenario in (small, large):
        if scenario.problem or scenario.error:
            measured = _scenario_measure(scenario, "")
    return Goal(what, "#8", target, measured, None if growth is None else growth <= 2)


def _beyond_import(res: resolution.Result, scenario: resolution.Scenario) -> str:
    return (
        f"{_ms(res.rounds_beyond_import(scenario), 2)} round trips "
        f"({_ms(res.net_ms(scenario), 0)} ms, of which {_ms(scenario.network_median, 0)} ms "
        f"waiting on the network = {_ms(res.network_rounds(scenario), 2)} round trips)"
    )


def _speedup_net(res: resolution.Result, scenario: resolution.Scenario) -> float | None:
    return stats.ratio(scenario.baseline_ms, res.net_ms(scenario))


def _scenario_measure(scenario: resolution.Scenario, text: str) -> str:
    if scenario.problem:
        return scenario.problem
    if scenario.error:
        return f"failed: {scenario.error}"
    return text


def markdown(run: Run) -> str:
    m = run.machine
    out: list[str] = [
        "# Benchmarks",
        "",
        f"Generated by `{run.command}` on {m.date} in {run.elapsed_s:.0f} s"
        + (" (**quick mode: tiny sizes, not representative**)" if run.quick else "")
        + ". Do not edit by hand: run the command again.",
        "",
        "The machine is shared and noisy, so every claim below is a ratio between numbers "
        "taken in this same run (start-up runs of all commands are interleaved round by round).",
        "",
        "| machine | |",
        "| --- | --- |",
        f"| CPU | {m.cpu_model} |",
        f"| cores | {m.cores} ({m.usable_cores} usable by this run) |",
        f"| kernel | {m.kernel} |",
        f"| Python | {m.python} |",
        f"| load average (1, 5, 15 min) | {_load(m.load_before)} before, "
        f"{_load(run.load_after)} after |",
        "",
        "## Goals",
        "",
        "| goal | issue | target | measured | result |",
        "| --- | --- | --- | --- | --- |",
    ]
    for goal in goals(run):
        out.append(
            f"| {goal.what} | {goal.source} | {goal.target} | {goal.measured} | {_met(goal.met)} |"
        )
    out += _startup_section(run) + _memory_section(run) + _resolution_section(run)
    out += _reaping_section(run)
    out += profile.section(run.phases, run.resolution.latency_ms)
    out += wholerun.section(run.whole)
    out += ["", "![charts](benchmarks.png)", ""]
    return "\n".join(out)


def _load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.2f}" for value in load)


def _startup_section(run: Run) -> list[str]:
    up = run.startup
    bare, same_flags, tini = up.median("py-S"), up.median("py"), up.median("tini")
    out = [
        "",
        "## 1. Start-up: `COMMAND -- true`",
        "",
        f"{up.runs} interleaved runs per command after 2 warm-up rounds, spawned with "
        "`posix_spawn` and reaped with `waitpid` (the bare `true` row is the harness's own cost); "
        "the binary's first start in rounds of its own after those, since the disk writes of "
        "its unpacking slowed whatever ran next. "
        "The module runs from a venv without import hooks, as `pip install` makes it; the "
        "dev venv's editable install adds a `.pth` import hook that makes `site` import "
        "pathlib and more. First start: a new empty `SECRETS_INIT_CACHE` for every run. "
        "The `import runpy` rows are the floor under any `python -m` start (`-m` imports runpy, "
        "importlib.util, contextlib and more before the module's first line); the one that "
        "leaves by `os._exit`, as secrets-init does, skips the interpreter's finalization that "
        "the other `-c` rows pay.",
        "",
        "| command | median ms | p10 | p90 | x `python -I -S -c pass` | x `python -I -c pass` "
        "| x tini | failed runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in up.rows:
        spread = row.spread
        if spread is None:
            out.append(
                f"| {row.label} | {row.note or 'no successful run'} | | | | | | {row.failures} |"
            )
            continue
        out.append(
            f"| {row.label} | {spread.median:.1f} | {spread.p10:.1f} | {spread.p90:.1f} "
            f"| {_x(stats.ratio(spread.median, bare))} "
            f"| {_x(stats.ratio(spread.median, same_flags))} "
            f"| {_x(stats.ratio(spread.median, tini))} | {row.failures} |"
        )
    out += [
        "",
        f"Top 5 imports of `python -I -X importtime -m secrets_init -- true` by own time "
        f"(median of runs; all imports together: {up.import_total_ms:.1f} ms):",
        "",
        "| module | self ms | cumulative ms |",
        "| --- | ---: | ---: |",
    ]
    out += [f"| `{c.module}` | {c.self_ms:.2f} | {c.cumulative_ms:.2f} |" for c in up.import_top]
    return out


def _memory_section(run: Run) -> list[str]:
    tini = next((r.rss_kib for r in run.memory if r.key == "tini"), None)
    out = [
        "",
        "## 2. Resident memory while supervising `sleep`",
        "",
        "Sum of VmRSS of every process of the wrapper's tree except the `sleep`, read 0.3 s "
        "after the `sleep` started. With references: one Secrets Manager, one Parameter Store "
        "and one Google reference (as available) were resolved by the child before its exec.",
        "",
        "| init | processes | RSS MiB | x tini |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in run.memory:
        if row.rss_kib is None:
            out.append(f"| {row.label} | {row.note} | | |")
        else:
            out.append(
                f"| {row.label} | {row.processes} | {row.rss_kib / MIB:.1f} "
                f"| {_x(stats.ratio(row.rss_kib, tini))} |"
            )
    return out


def _resolution_section(run: Run) -> list[str]:
    res = run.resolution
    lat = res.latency_ms
    out = [
        "",
        f"## 3. Secret resolution, {lat:.0f} ms added to every request",
        "",
        "secrets-init's own log line (`resolved N secret references in X ms`, timed in the child "
        "from before the SDK import to the last answer), median of the runs; against the same "
        "references fetched one by one in the benchmark process with warmed clients. "
        "AWS references are spread over three regions; the proxy in front of moto and the fake "
        "Google server count the calls. *Beyond import* subtracts, run by run, the SDK import "
        "time of that same run (secrets-init runs with `-X importtime`; when both SDKs import "
        "at once in two threads their times overlap, so for mixed references this overstates "
        "the import and understates the rest). *On the network* is the wall time during which "
        "at least one call was in flight, as seen by the proxy and the fake Google server; "
        "divided by the latency it is the number of serial round trips. The rest of the time "
        "beyond the import is CPU work: client creation, parsing, threads. "
        "The SDK costs below are measured apart, in a fresh interpreter (median).",
        "",
        "| SDK | import ms (median) | RSS it adds, MiB |",
        "| --- | ---: | ---: |",
    ]
    for cost in res.sdk.values():
        if cost.import_ms is None:
            out.append(f"| {cost.name} | {cost.note} | |")
        else:
            out.append(f"| {cost.name} | {cost.import_ms:.0f} | {(cost.rss_kib or 0) / MIB:.1f} |")
    out += [
        "",
        "| references | secrets-init ms | SDK import in it, ms | beyond import ms "
        "| round trips beyond import | on the network ms "
        "| serial round trips | API calls (minimum) | one by one ms | one-by-one calls "
        "| speed-up beyond import | speed-up incl. import |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in res.scenarios:
        if s.problem or s.error:
            out.append(f"| {s.label} | {_scenario_measure(s, '')} | | | | | | | | | | |")
            continue
        out.append(
            f"| {s.label} | {_ms(s.si_median, 0)} | {_ms(s.import_median, 0)} "
            f"| {_ms(res.net_ms(s), 0)} | {_ms(res.rounds_beyond_import(s), 2)} "
            f"| {_ms(s.network_median, 0)} | {_ms(res.network_rounds(s), 2)} "
            f"| {s.si_calls} ({s.min_calls()}) | {_ms(s.baseline_ms, 0)} | {s.baseline_calls} "
            f"| {_x(_speedup_net(res, s))} | {_x(stats.ratio(s.baseline_ms, s.si_median))} |"
        )
    return out


def _reaping_section(run: Run) -> list[str]:
    tini = next((r for r in run.reaping if r.key == "tini"), None)
    out = [
        "",
        f"## 4. Reaping {run.orphans} orphans as PID 1",
        "",
        "Each init runs as PID 1 of `unshare --fork --pid --mount-proc`; its program is a `sh` "
        f"loop doing `(true &)` {run.orphans} times. /proc is sampled from outside for PID 1's "
        "children (zombies and not yet exited orphans) until none is left after the loop ends.",
        "",
        "| PID 1 | loop s | last reaped, ms after the loop | total x tini | peak zombies "
        "| left at the end | PID 1 CPU s | exit |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in run.reaping:
        if row.total_s is None:
            out.append(f"| {row.label} | {row.note} | | | | | | |")
            continue
        out.append(
            f"| {row.label} | {row.spawn_s:.2f} | {_ms(row.lag_ms)} "
            f"| {_x(stats.ratio(row.total_s, tini.total_s if tini else None))} "
            f"| {row.peak_zombies} | {row.left} | {_ms(row.init_cpu_s, 2)} | {row.exit_status} |"
        )
    return out


def chart(run: Run, path: Path) -> str:
    """Write the PNG; returns a note when matplotlib is missing (the report still stands)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install '.[bench]'): no chart written"

    figure, axes = plt.subplots(2, 2, figsize=(14, 10))
    up = [row for row in run.startup.rows if row.spread is not None]
    _bars(
        axes[0][0],
        [_short(row.key) for row in up],
        [row.spread.median for row in up if row.spread],
        "1. start-up, `-- true` (median, p10-p90)",
        "ms",
        errors=[
            (row.spread.median - row.spread.p10, row.spread.p90 - row.spread.median)
            for row in up
            if row.spread
        ],
    )
    mem = [row for row in run.memory if row.rss_kib is not None]
    _bars(
        axes[0][1],
        [_short(row.key) for row in mem],
        [(row.rss_kib or 0) / MIB for row in mem],
        "2. RSS while supervising sleep",
        "MiB",
        limit=12.0,
    )
    scenarios = [s for s in run.resolution.scenarios if s.si_median is not None]
    ax = axes[1][0]
    positions = range(len(scenarios))
    imports = [s.import_median or 0 for s in scenarios]
    rest = [s.net_median or 0 for s in scenarios]
    left = [p - 0.2 for p in positions]
    ax.bar(left, imports, 0.4, label="secrets-init: SDK import", color="#9ecae1")
    ax.bar(left, rest, 0.4, bottom=imports, label="secrets-init: the rest", color="#1f77b4")
    ax.bar(
        [p + 0.2 for p in positions],
        [s.baseline_ms or 0 for s in scenarios],
        0.4,
        label="one by one",
        color="#ff7f0e",
    )
    ax.set_xticks(list(positions), [s.label for s in scenarios], rotation=20, ha="right")
    ax.set_title(f"3. resolution, {run.resolution.latency_ms:.0f} ms per request")
    ax.set_ylabel("ms")
    ax.legend()
    reaped = [row for row in run.reaping if row.total_s is not None]
    _bars(
        axes[1][1],
        [_short(row.key) for row in reaped],
        [row.total_s or 0 for row in reaped],
        f"4. {run.orphans} orphans: loop start to last reaped",
        "s",
        labels=[f"peak {row.peak_zombies} zombies" for row in reaped],
    )
    figure.suptitle(f"secrets-init benchmarks, {run.machine.date}, {run.machine.cores} cores")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return ""


def _short(key: str) -> str:
    return key.replace("binary-", "bin ").replace("module-", "module ").replace("py-S", "py -S")


def _bars(
    ax: object,
    names: Sequence[str],
    heights: Sequence[float],
    title: str,
    unit: str,
    errors: Sequence[tuple[float, float]] | None = None,
    limit: float | None = None,
    labels: Sequence[str] | None = None,
) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    yerr = None if errors is None else [[low for low, _ in errors], [high for _, high in errors]]
    bars = ax.bar(list(names), list(heights), yerr=yerr, capsize=3)
    if labels:
        ax.bar_label(bars, labels=list(labels), fontsize=8)
    if limit is not None:
        ax.axhline(limit, color="red", linestyle="--", linewidth=1, label=f"goal {limit:g} {unit}")
        ax.legend()
    ax.set_title(title)
    ax.set_ylabel(unit)
    ax.tick_params(axis="x", rotation=20)
