"""Per-pod footprint: the bytes secrets-init writes to a pod's memory-backed volumes, and the time.

In Kubernetes every byte secrets-init writes to a `medium: Memory` emptyDir
is memory charged to the pod for its life. Measured here, with the binary,
by the references a pod holds (none, only AWS, only Google, both):

- the lay pattern (examples/kubernetes): what `lay DIR FAMILY...` puts in
  the shared volume, plus what the application container then writes there
  (it runs the laid tree in place: nothing, measured as the volume's change);
- a container that runs the file as its ENTRYPOINT: what the binary unpacks
  into its cache directory on a first start with those references;
- for an earlier build (--earlier, e.g. the previous release's binary), the
  old pattern: the ~20 MB copy in the shared volume plus the tree it unpacks.

And the time: the application container's start (`-- true`, laid tree), the
initContainer's `lay`, the earlier build's first start (which unpacks), and
a warm resolution through each build (one Secrets Manager, one Parameter
Store and one Google reference against the local emulators), so that a part
that costs time shows beside the bytes it saves. The size of each part of
the tree comes from the binary itself (its manifests).

`python -m bench.footprint [--earlier BINARY]` measures this alone and
rewrites its section of docs/benchmarks.md; `python -m bench
[--earlier-binary BINARY]` measures it too and writes it with the rest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import emulators, resolution, sections, stats, subjects

BEGIN = "<!-- footprint: python -m bench.footprint -->"
END = "<!-- /footprint -->"
MB = 1_000_000
FAMILIES = ("aws", "google")
# A value with a family's prefix: enough for the launcher's byte-prefix look. The child
# then refuses it as malformed, which ends the run before any network call.
PREFIX_ONLY = {"aws": "arn:aws:ssm:malformed", "google": "gcp:secretmanager:malformed name"}
# The goals, bytes by the families referenced (#13).
GOALS_MB = {(): 25, ("aws",): 30, ("google",): 45, ("aws", "google"): 55}
START_GOAL_MS = 50.0


@dataclass(frozen=True)
class Pod:
    families: tuple[str, ...]
    laid: int  # bytes in the shared volume after `lay`
    app_written: int  # bytes the application container added there
    entrypoint: int  # bytes a first start of the file unpacks, with these references
    earlier: int | None  # the earlier build: copy + unpacked tree
    lay_ms: float


@dataclass(frozen=True)
class Part:
    name: str
    unpacked: int
    packed: int
    files: int


@dataclass(frozen=True)
class Result:
    file_bytes: int
    earlier_file_bytes: int | None
    pods: list[Pod]
    parts: list[Part]
    app_start_ms: float
    earlier_first_start_ms: float | None
    resolution_ms: dict[str, tuple[float | None, float | None]]  # kind -> (this, earlier)


def _env(**extra: str) -> dict[str, str]:
    return subjects.clean_env(**extra)


def tree_bytes(path: Path) -> int:
    """What the files under `path` take, as `du --apparent-size -b` counts them."""
    total = 0
    for current, _, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(current, name)).st_size
    return total


def _run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, timeout=120, check=False)
    return (time.perf_counter() - started) * 1000


def _families_env(families: tuple[str, ...]) -> dict[str, str]:
    return {f"BENCH_{family.upper()}": PREFIX_ONLY[family] for family in families}


def _fresh(workdir: Path, name: str) -> Path:
    path = workdir / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700, parents=True)
    return path


def _pod(binary: str, earlier: str | None, families: tuple[str, ...], workdir: Path) -> Pod:
    volume = _fresh(workdir, "volume")
    lay_ms = _run([binary, "lay", str(volume), *(families or ("none",))], _env())
    laid = tree_bytes(volume)
    _run([str(volume / "secrets-init"), "--", "true"], _env(**_families_env(families)))
    app_written = tree_bytes(volume) - laid
    cache = _fresh(workdir, "cache")
    _run([binary, "--", "true"], _env(SECRETS_INIT_CACHE=str(cache), **_families_env(families)))
    entrypoint = tree_bytes(cache)
    old = None
    if earlier:
        cache = _fresh(workdir, "earlier-cache")
        env = _env(SECRETS_INIT_CACHE=str(cache), **_families_env(families))
        _run([earlier, "--", "true"], env)
        old = os.path.getsize(earlier) + tree_bytes(cache)
    return Pod(families, laid, app_written, entrypoint, old, lay_ms)


def _parts(binary: str, workdir: Path) -> list[Part]:
    """Each part's size as its manifest lists it, and its packed stream's, from the trailer."""
    volume = _fresh(workdir, "volume")
    _run([binary, "lay", str(volume), "all"], _env())
    [tree] = [p for p in volume.iterdir() if p.name.startswith(".secrets-init-")]
    packed = _packed_sizes(binary)
    found = []
    for name, size in packed.items():
        lines = (tree / f"secrets-init.{name}.manifest").read_text().splitlines()
        unpacked = sum(int(line.split(" ", 2)[1]) for line in lines)
        found.append(Part(name, unpacked, size, len(lines)))
    return found


def _packed_sizes(binary: str) -> dict[str, int]:
    head = struct.Struct("<8sQQQQIIIIII")  # packaging/pack.py's TRAILER, up to its tables
    part = struct.Struct("<16s32sQQ")
    with open(binary, "rb") as handle:
        handle.seek(-992, os.SEEK_END)
        trailer = handle.read()
    count = head.unpack_from(trailer)[8]
    at = head.size + 4 * 48
    sizes = {}
    for index in range(count):
        name, _, _, size = part.unpack_from(trailer, at + index * part.size)
        sizes[name.rstrip(b"\0").decode()] = size
    return sizes


def _app_start_ms(binary: str, runs: int, workdir: Path) -> float:
    volume = _fresh(workdir, "volume")
    _run([binary, "lay", str(volume), "all"], _env())
    argv = [str(volume / "secrets-init"), "--", "true"]
    return stats.median([_run(argv, _env()) for _ in range(runs)])


def _first_start_ms(binary: str, runs: int, workdir: Path) -> float:
    samples = []
    for _ in range(runs):
        cache = _fresh(workdir, "first-cache")
        samples.append(_run([binary, "--", "true"], _env(SECRETS_INIT_CACHE=str(cache))))
    return stats.median(samples)


def _resolution_ms(
    binaries: list[str | None], refs: dict[str, str], runs: int, workdir: Path
) -> list[float | None]:
    """Median of whole warm runs that resolve `refs`, by binary (None when one fails).

    The binaries' runs alternate, so that the machine's load weighs on each alike."""
    envs = [
        _env(SECRETS_INIT_CACHE=str(_fresh(workdir, f"resolve-{i}")), **refs)
        for i in range(len(binaries))
    ]
    samples: list[list[float] | None] = [[] for _ in binaries]
    for index in range(runs + 1):
        for which, binary in enumerate(binaries):
            taken = samples[which]
            if binary is None or taken is None:
                continue
            started = time.perf_counter()
            done = subprocess.run(
                [binary, "--", "true"], env=envs[which], capture_output=True, timeout=120
            )
            if done.returncode != 0:
                samples[which] = None
            elif index:  # the first run unpacks
                taken.append((time.perf_counter() - started) * 1000)
    return [stats.median(taken) if taken else None for taken in samples]


def measure(
    binary: str,
    earlier: str | None,
    references: dict[str, dict[str, str]],
    runs: int,
    workdir: Path,
) -> Result:
    """`references`: by kind ("aws", "google"), an environment that resolves against emulators."""
    pods = [
        _pod(binary, earlier, families, workdir)
        for families in ((), ("aws",), ("google",), ("aws", "google"))
    ]
    resolution: dict[str, tuple[float | None, float | None]] = {}
    for kind, env in references.items():
        now, before = _resolution_ms([binary, earlier], env, runs, workdir)
        resolution[kind] = (now, before)
    return Result(
        file_bytes=os.path.getsize(binary),
        earlier_file_bytes=os.path.getsize(earlier) if earlier else None,
        pods=pods,
        parts=_parts(binary, workdir),
        app_start_ms=_app_start_ms(binary, runs, workdir),
        earlier_first_start_ms=_first_start_ms(earlier, runs, workdir) if earlier else None,
        resolution_ms=resolution,
    )


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / MB:.1f} MB"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def _label(families: tuple[str, ...]) -> str:
    return {
        (): "no references (a plain init)",
        ("aws",): "only AWS references",
        ("google",): "only Google references",
        ("aws", "google"): "AWS and Google references",
    }[families]


def markdown(result: Result) -> str:
    lines = [
        BEGIN,
        "## Per-pod footprint",
        "",
        "Bytes secrets-init writes to a pod's memory-backed volumes (memory for the pod's"
        " life), by the references the pod holds (`python -m bench.footprint`; MB = 10^6"
        " bytes). *Lay pattern*: the initContainer's `lay` into the shared volume, plus what"
        " the application container writes there after it. *ENTRYPOINT*: what a first start"
        " of the file unpacks into its cache directory. *Earlier build*: the old pattern, the"
        " copied file plus the tree it unpacked.",
        "",
        "| pod | lay pattern (volume + app writes) | ENTRYPOINT (unpacked) | goal"
        " | lay pattern | ENTRYPOINT | earlier build | `lay` took |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for pod in result.pods:
        goal = GOALS_MB[pod.families] * MB
        pattern = pod.laid + pod.app_written
        lines.append(
            f"| {_label(pod.families)} | {_mb(pod.laid)} + {pod.app_written} B"
            f" | {_mb(pod.entrypoint)} | ≤ {GOALS_MB[pod.families]} MB"
            f" | {_met(pattern <= goal)} | {_met(pod.entrypoint <= goal)}"
            f" | {_mb(pod.earlier)} | {_ms(pod.lay_ms)} |"
        )
    start_ok = result.app_start_ms < START_GOAL_MS
    lines += [
        "",
        "| time | this build | earlier build | goal |",
        "| --- | --- | --- | --- |",
        f"| application container's first start, `-- true` | {_ms(result.app_start_ms)}"
        f" (laid tree, nothing to unpack) | {_ms(result.earlier_first_start_ms)} (unpacks)"
        f" | < {START_GOAL_MS:.0f} ms: {_met(start_ok)} |",
    ]
    for kind, (now, before) in result.resolution_ms.items():
        verdict = "-" if now is None or before is None else _met(now <= before * 1.05)
        what = "1 Secrets Manager and 1 Parameter Store" if kind == "aws" else "1 Google"
        lines.append(
            f"| a warm run resolving {what} reference{'s' if kind == 'aws' else ''}"
            f" (whole process, median) | {_ms(now)} | {_ms(before)}"
            f" | not worse than the earlier build (5% noise): {verdict} |"
        )
    lines += [
        "",
        f"The file: {_mb(result.file_bytes)} (earlier build {_mb(result.earlier_file_bytes)})."
        " Its parts (packaging/parts.py), as the build lists them: a dependency bump shows here.",
        "",
        "| part | unpacked | packed in the file | files | unpacked when |",
        "| --- | --- | --- | --- | --- |",
    ]
    when = {"core": "every run", "tls": "AWS or Google references"}
    for part in result.parts:
        lines.append(
            f"| {part.name} | {_mb(part.unpacked)} | {_mb(part.packed)} | {part.files}"
            f" | {when.get(part.name, part.name + ' references')} |"
        )
    return "\n".join(lines) + "\n" + END + "\n"


def measure_for(
    binary: str | None,
    earlier: Path | None,
    emu: emulators.Emulators,
    runs: int,
    workdir: Path,
) -> Result | None:
    """What `python -m bench` measures: None when the binary is not built."""
    if binary is None:
        return None
    path = str(earlier) if earlier is not None and os.access(earlier, os.X_OK) else None
    return measure(binary, path, references_by_kind(emu), runs, workdir / "footprint")


def section(result: Result | None, path: Path) -> str:
    """This run's section, or the last one measured when the binary was not built."""
    return "\n" + markdown(result) if result is not None else kept_section(path)


def kept_section(path: Path) -> str:
    return sections.kept(path, BEGIN, END)


def write_section(path: Path, section: str) -> None:
    sections.write(path, BEGIN, END, section)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.footprint", description=__doc__)
    parser.add_argument("--binary", default=str(subjects.ROOT / "dist" / "secrets-init"))
    parser.add_argument("--earlier", help="an earlier build of the binary, measured alongside")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per row")
    parser.add_argument("--out", type=Path, default=subjects.ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="secrets-init-bench-footprint-") as workdir,
        emulators.running(1) as emu,
    ):
        result = measure(
            args.binary, args.earlier, references_by_kind(emu), args.runs, Path(workdir)
        )
    section = markdown(result)
    write_section(args.out, section)
    sys.stdout.write(section)
    return 0


def references_by_kind(emu: emulators.Emulators) -> dict[str, dict[str, str]]:
    """One Secrets Manager and one Parameter Store reference; one Google reference."""
    found = {}
    for kind, counts in (
        ("aws", {emulators.SM: 1, emulators.SSM: 1}),
        ("google", {emulators.GOOGLE: 1}),
    ):
        if all(emu.available(k) for k in counts):
            found[kind] = {**emu.env(), **resolution.reference_env(emu, counts)}
    return found


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
