"""`python -m bench [--quick] [--out DIR] ...`: run every part, write the report.

The defaults are the documented full run (under ~5 minutes on 2 cores);
`--quick` shrinks every size so the smoke test can prove the command still
works end to end in seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import (
    emulators,
    footprint,
    machine,
    memory,
    profile,
    reaping,
    refresh,
    report,
    resolution,
    sections,
    startup,
    subjects,
    webhook,
    wholerun,
)


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--out", type=Path, default=subjects.ROOT / "docs", help="output dir")
    parser.add_argument("--runs", type=int, help="start-up runs per command (default 30)")
    parser.add_argument(
        "--earlier-binary", type=Path, help="an earlier build of dist/secrets-init, for footprint"
    )
    parser.add_argument("--sizes", type=_sizes, help="mixed reference counts (default 1,10,40,100)")
    parser.add_argument("--orphans", type=int, help="orphans to reap (default 10000)")
    parser.add_argument("--repeats", type=int, help="runs per resolution scenario (default 5)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added per request")
    parser.add_argument("--whole-runs", type=int, help="whole runs per row (default 10)")
    parser.add_argument(
        "--compare-with",
        type=Path,
        metavar="DIR",
        help="a checkout of an earlier commit (e.g. a git worktree) to measure alongside",
    )
    parser.add_argument("--no-chart", action="store_true", help="write the report only")
    parser.add_argument("--command-name", default="scripts/bench", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.runs = args.runs or (3 if quick else 30)
    args.sizes = args.sizes or ([1, 3, 6] if quick else [1, 10, 40, 100])
    args.orphans = args.orphans or (200 if quick else 10_000)
    args.repeats = args.repeats or (1 if quick else 5)
    args.whole_runs = args.whole_runs or (1 if quick else 10)
    args.aws_goal = (2, 2) if quick else (20, 20)
    args.google_goal = 2 if quick else 20
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="secrets-init-bench-") as workdir:
        found = subjects.find(Path(workdir), args.compare_with)
        described = machine.describe(found.clean_python)
        _say(f"machine: {described.cores} cores, {described.cpu_model}, {described.python}")
        _say(f"1/4 start-up, {args.runs} runs per command")
        up = startup.run(found, args.runs, 3 if args.quick else 10, workdir)
        plan = resolution.scenarios(args.sizes, args.aws_goal, args.google_goal)
        with emulators.running(resolution.per_kind_needed(plan)) as emu:
            _say("2/4 resident memory")
            counts = {kind: 1 for kind in emulators.KINDS if emu.available(kind)}
            refs = {**emu.env(), **resolution.reference_env(emu, counts)} if counts else None
            mem = memory.run(found, refs, timeout=60)
            _say(f"3/4 resolution, {args.latency_ms:g} ms per request")
            res = resolution.run(found, emu, plan, args.repeats, args.latency_ms / 1000)
            _say("3d/4 per-pod footprint")
            foot = footprint.measure_for(
                found.binary, args.earlier_binary, emu, 3 if args.quick else 10, Path(workdir)
            )
            _say("3b/4 where the resolution time goes")
            phases = profile.run(
                emu, profile.cases(found, args.aws_goal), args.repeats, args.latency_ms / 1000
            )
            _say(f"3c/4 whole runs, {args.whole_runs} per row")
            whole = wholerun.run(found, emu, args.aws_goal, args.whole_runs, args.latency_ms / 1000)
        _say(f"4/4 reaping {args.orphans} orphans as PID 1")
        reaped = reaping.run(found, args.orphans, timeout=30 if args.quick else 120)
    run = report.Run(
        machine=described,
        load_after=os.getloadavg(),
        elapsed_s=time.monotonic() - started,
        command=args.command_name + (" --quick" if args.quick else ""),
        quick=args.quick,
        startup=up,
        memory=mem,
        resolution=res,
        phases=phases,
        whole=whole,
        reaping=reaped,
        orphans=args.orphans,
    )
    text = report.markdown(run) + footprint.section(foot, args.out / "benchmarks.md")
    note = (
        "no chart drawn (--no-chart)"
        if args.no_chart
        else report.chart(run, args.out / "benchmarks.png")
    )
    if note:
        text += f"\n_{note}._\n"
        _say(note)
    # Section 6 is measured apart (python -m bench.refresh, minutes of refreshes): kept as it was.
    kept = refresh.kept_section(args.out / "benchmarks.md")
    # So is section 8 (python -m bench.webhook, a registry and a load generator).
    kept += sections.kept(args.out / "benchmarks.md", webhook.BEGIN, webhook.END)
    (args.out / "benchmarks.md").write_text(text + kept)
    _say(f"wrote {args.out / 'benchmarks.md'} in {run.elapsed_s:.0f} s")
    return 0


def _say(message: str) -> None:
    sys.stderr.write(f"bench: {message}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
