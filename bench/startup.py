"""Part 1: what an init wrapper adds to every start, measured as `COMMAND -- true`.

Each command is started with posix_spawn and waited for, so the harness adds
the same small cost to every row (the bare `true` row shows how much). Rounds
are interleaved: one run of each command per round, so a burst of noise on
the shared machine hits every row alike instead of one row's whole sample.
The binary's first start is the exception, measured in rounds of its own
after those: it unpacks 17 MB into a new directory each time, and the disk
writes that follow slowed whatever ran next (`python -I -S -c pass` by 12%
when it came right after), which would flatter every ratio to that row.

The two `import runpy` rows are the floor under any `python -m` start: `-m`
imports runpy (and through it importlib.util, contextlib, collections,
functools) before the module's first line runs. The second also leaves as
secrets-init does, by `os._exit`, without the interpreter's finalization that
every other `-c` row pays: the difference between the two is what that costs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

from bench import stats
from bench.subjects import Subjects, clean_env
from testing.process import STARTS


@dataclass
class Row:
    key: str
    label: str
    argv: list[str] | None  # None: not available, `note` says why
    note: str = ""
    fresh_cache: bool = False  # a new empty SECRETS_INIT_CACHE for every run
    env: dict[str, str] = field(default_factory=dict)  # added to the clean environment
    terminal: bool = False  # stdin a new pseudo-terminal instead of /dev/null
    samples_ms: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def spread(self) -> stats.Spread | None:
        return stats.spread(self.samples_ms) if self.samples_ms else None


@dataclass
class ImportCost:
    module: str
    self_ms: float
    cumulative_ms: float


@dataclass
class Result:
    rows: list[Row]
    runs: int
    import_top: list[ImportCost]
    import_total_ms: float
    binary_size: int | None
    cache_supported: bool | None

    def row(self, key: str) -> Row:
        return next(r for r in self.rows if r.key == key)

    def median(self, key: str) -> float | None:
        spread = self.row(key).spread
        return spread.median if spread else None


def rows_for(subjects: Subjects) -> list[Row]:
    py = subjects.clean_python
    rows = [
        Row("true", "`true` (bare)", ["/bin/true"]),
        Row("py-S", "`python -I -S -c pass`", [py, "-I", "-S", "-c", "pass"]),
        Row("py", "`python -I -c pass`", [py, "-I", "-c", "pass"]),
        Row("runpy", '`python -I -c "import runpy"`', [py, "-I", "-c", "import runpy"]),
        Row(
            "runpy-exit",
            '`python -I -c "import runpy, os; os._exit(0)"`',
            [py, "-I", "-c", "import runpy, os; os._exit(0)"],
        ),
        Row("module", "`python -I -m secrets_init -- true`", [*subjects.module(), "--", "true"]),
        Row(
            "module-terminal",
            "same, stdin a terminal: a forked child takes it, then execs",
            [*subjects.module(), "--", "true"],
            terminal=True,
        ),
        Row(
            "module-arn",
            "same, with an `arn:` value that names no secret (as EKS sets `AWS_ROLE_ARN`): "
            "a forked child parses the environment, then execs",
            [*subjects.module(), "--", "true"],
            env=STARTS["forked"],
        ),
        Row(
            "module-dev",
            "same, from the dev venv (editable install)",
            [*subjects.module(subjects.dev_python), "--", "true"],
        ),
    ]
    if subjects.earlier_python:
        rows.append(
            Row(
                "module-earlier",
                "same, earlier build (`--compare-with`)",
                [*subjects.module(subjects.earlier_python), "--", "true"],
            )
        )
    if subjects.binary:
        rows.append(
            Row(
                "binary-warm", "`dist/secrets-init -- true` (warm)", [subjects.binary, "--", "true"]
            )
        )
        rows.append(
            Row(
                "binary-first",
                "`dist/secrets-init -- true` (first start, empty cache)",
                [subjects.binary, "--", "true"],
                fresh_cache=True,
            )
        )
    else:
        note = "not built (scripts/build-binary)"
        rows.append(Row("binary-warm", "`dist/secrets-init -- true` (warm)", None, note))
        rows.append(Row("binary-first", "`dist/secrets-init -- true` (first start)", None, note))
    for key, path, argv in (
        ("tini", subjects.tini, ["-s", "--", "true"]),
        ("dumb-init", subjects.dumb_init, ["--", "true"]),
    ):
        label = f"`{key} {' '.join(argv)}`"
        if path:
            rows.append(Row(key, label, [path, *argv]))
        else:
            rows.append(Row(key, label, None, "not installed (scripts/bench installs it)"))
    return rows


def run(subjects: Subjects, runs: int, importtime_runs: int, workdir: str) -> Result:
    rows = rows_for(subjects)
    cache_supported = _probe_cache(subjects.binary, workdir) if subjects.binary else None
    if cache_supported is False:
        first = next(r for r in rows if r.key == "binary-first")
        first.argv, first.note = None, "the binary ignores SECRETS_INIT_CACHE"
    env = clean_env()
    interleaved = [row for row in rows if row.argv is not None and not row.fresh_cache]
    apart = [row for row in rows if row.argv is not None and row.fresh_cache]
    for group in (interleaved, apart):  # the module docstring says why two
        _rounds(group, runs, env, workdir)
    top, total = importtime(subjects.module(), importtime_runs)
    size = os.path.getsize(subjects.binary) if subjects.binary else None
    return Result(rows, runs, top, total, size, cache_supported)


def _rounds(rows: list[Row], runs: int, env: dict[str, str], workdir: str) -> None:
    warmup = 2
    for round_number in range(warmup + runs):
        for row in rows:
            elapsed = _time_once(row, env, workdir)
            if elapsed is None:
                row.failures += 1
            elif round_number >= warmup:
                row.samples_ms.append(elapsed)


def _time_once(row: Row, env: dict[str, str], workdir: str) -> float | None:
    assert row.argv is not None
    run_env = {**env, **row.env}
    cache = None
    if row.fresh_cache:
        cache = tempfile.mkdtemp(prefix="cache-", dir=workdir)
        run_env = {**run_env, "SECRETS_INIT_CACHE": cache}
    primary, secondary = os.openpty() if row.terminal else (-1, -1)
    try:
        return spawn_and_wait(row.argv, run_env, stdin=None if secondary < 0 else secondary)
    finally:
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
        for fd in (primary, secondary):
            if fd >= 0:
                os.close(fd)


def spawn_and_wait(argv: list[str], env: dict[str, str], stdin: int | None = None) -> float | None:
    """Wall milliseconds from spawn to reaped; None when the command failed.

    stdin: a descriptor to give the command as its stdin; /dev/null without.
    """
    actions: list[tuple[object, ...]] = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
        if stdin is None
        else (os.POSIX_SPAWN_DUP2, stdin, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
    ]
    started = time.perf_counter()
    try:
        pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    except OSError:  # e.g. a binary being rebuilt right now
        return None
    _, status = os.waitpid(pid, 0)
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed if os.waitstatus_to_exitcode(status) == 0 else None


def _probe_cache(binary: str, workdir: str) -> bool:
    """Does the binary unpack into SECRETS_INIT_CACHE? Only then is a first start measurable."""
    cache = tempfile.mkdtemp(prefix="probe-", dir=workdir)
    try:
        spawn_and_wait([binary, "--", "true"], clean_env(SECRETS_INIT_CACHE=cache))
        return bool(os.listdir(cache))
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def importtime(module_argv: list[str], runs: int) -> tuple[list[ImportCost], float]:
    """Top five modules by own import time (median over runs), and the total of all."""
    import subprocess

    python, *rest = module_argv
    per_module: dict[str, list[tuple[int, int]]] = {}
    totals: list[float] = []
    for _ in range(max(1, runs)):
        done = subprocess.run(
            [python, "-X", "importtime", *rest, "--", "true"],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
            check=False,
        )
        total = 0
        for line in done.stderr.splitlines():
            parsed = _parse_importtime(line)
            if parsed is None:
                continue
            name, own, cumulative = parsed
            total += own
            per_module.setdefault(name, []).append((own, cumulative))
        totals.append(total / 1000)
    costs = [
        ImportCost(
            name,
            stats.median([own for own, _ in samples]) / 1000,
            stats.median([cum for _, cum in samples]) / 1000,
        )
        for name, samples in per_module.items()
    ]
    costs.sort(key=lambda cost: cost.self_ms, reverse=True)
    return costs[:5], stats.median(totals)


def _parse_importtime(line: str) -> tuple[str, int, int] | None:
    if not line.startswith("import time:") or "self [us]" in line:
        return None
    own, cumulative, name = line[len("import time:") :].split("|", 2)
    return name.strip(), int(own), int(cumulative)
