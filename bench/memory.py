"""Part 2: resident memory an init wrapper holds for the container's whole life.

Each wrapper supervises `sleep`; once the sleep is running (for secrets-init:
after the references were resolved and the child exec'd), the VmRSS of every
process in the wrapper's tree except the sleep is summed. That covers a frozen
build whose bootloader and interpreter might be two processes, and shows that
the SDKs imported for resolution did not stay resident anywhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass

from bench import procs
from bench.subjects import Subjects, clean_env

SLEEP = "sleep"


@dataclass
class Row:
    key: str
    label: str
    rss_kib: int | None = None
    processes: int = 0
    note: str = ""

    @property
    def rss_mib(self) -> float | None:
        return None if self.rss_kib is None else self.rss_kib / 1024


def run(subjects: Subjects, reference_env: Mapping[str, str] | None, timeout: float) -> list[Row]:
    """`reference_env`: variables with live references to resolve (None: emulators unavailable)."""
    rows: list[Row] = []
    plans: list[tuple[str, str, list[str] | None, Mapping[str, str] | None, str]] = [
        ("module", "secrets-init, module", subjects.module(), {}, ""),
        (
            "module-refs",
            "secrets-init, module, references resolved",
            subjects.module(),
            reference_env,
            "emulators unavailable",
        ),
    ]
    binary = [subjects.binary] if subjects.binary else None
    plans += [
        ("binary", "secrets-init, binary", binary, {}, "not built"),
        (
            "binary-refs",
            "secrets-init, binary, references resolved",
            binary,
            reference_env,
            "not built" if binary is None else "emulators unavailable",
        ),
        ("tini", "tini", [subjects.tini, "-s"] if subjects.tini else None, {}, "not installed"),
        (
            "dumb-init",
            "dumb-init",
            [subjects.dumb_init] if subjects.dumb_init else None,
            {},
            "not installed",
        ),
    ]
    for key, label, argv, extra, missing in plans:
        row = Row(key, label)
        if argv is None or extra is None:
            row.note = missing
        else:
            _measure(row, [*argv, "--", SLEEP, "60"], clean_env(**extra), timeout)
        rows.append(row)
    return rows


def _measure(row: Row, argv: list[str], env: dict[str, str], timeout: float) -> None:
    try:
        process = _start(argv, env)
    except OSError as error:
        row.note = f"cannot start: {error.strerror}"
        return
    try:
        _sample(row, process, timeout)
    finally:
        _stop(process)


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _sample(row: Row, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for the sleep to be running, then sum the RSS of everything else in the tree."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if any(p.comm == SLEEP for p in procs.tree(process.pid)[1:]):
            break
        time.sleep(0.02)
    else:
        row.note = _why_not_started(process)
        return
    time.sleep(0.3)  # let the supervisor settle after the exec it waited for
    own = [p for p in procs.tree(process.pid) if p.comm != SLEEP]
    sizes = [procs.rss_kib(p.pid) for p in own]
    row.rss_kib = sum(size for size in sizes if size is not None)
    row.processes = len(own)


def _why_not_started(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        return "the program did not start in time"
    assert process.stderr is not None
    first = process.stderr.read().decode("utf-8", "replace").strip().splitlines()[:1]
    return f"exited {process.returncode}: {first[0] if first else 'no message'}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if process.stderr is not None:
        process.stderr.close()
