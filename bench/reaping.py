"""Part 4: zombie reaping as PID 1 of a new PID namespace.

The program under each init is a shell loop that orphans `count`
short-lived processes (`(true &)`: the subshell exits, its background child
is re-parented to PID 1 and exits). From outside the namespace this process
samples /proc for PID 1's children: the peak number of zombies waiting to be
reaped, and the moment none is left after the loop ended. The loop then
reads one line from stdin and exits, so the namespace stays alive until the
sample is complete. Every loop is bounded in count and in time.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass

from bench import procs
from bench.subjects import Subjects, clean_env
from testing.process import PATH, unshare_available

SPAWNER = r"""
echo "start $$"
i=0
while [ "$i" -lt "$1" ]; do (true &); i=$((i + 1)); done
echo done
read -r _
"""


@dataclass
class Row:
    key: str
    label: str
    note: str = ""
    spawn_s: float | None = None  # the loop itself
    lag_ms: float | None = None  # from the loop's end until the last orphan was reaped
    total_s: float | None = None  # from the loop's start until the last orphan was reaped
    peak_zombies: int | None = None
    left: int | None = None  # PID 1's children other than the loop at the end
    init_cpu_s: float | None = None  # CPU time PID 1 spent while the loop ran
    exit_status: int | None = None


def available() -> str:
    """Empty when PID namespaces can be made here, else why not."""
    if shutil.which("unshare", path=PATH) is None:
        return "unshare not found"
    if not unshare_available():
        return "unshare --pid is not permitted here"
    return ""


def run(subjects: Subjects, count: int, timeout: float) -> list[Row]:
    plans = [
        ("module", "secrets-init, module", subjects.module(), "--"),
        ("binary", "secrets-init, binary", [subjects.binary] if subjects.binary else None, "--"),
        ("tini", "tini", [subjects.tini] if subjects.tini else None, "--"),
        ("dumb-init", "dumb-init", [subjects.dumb_init] if subjects.dumb_init else None, "--"),
    ]
    problem = available()
    rows = []
    for key, label, init, separator in plans:
        row = Row(key, label)
        if problem:
            row.note = problem
        elif init is None:
            row.note = "not built" if key == "binary" else "not installed"
        else:
            argv = [*init, separator, "sh", "-c", SPAWNER, "spawner", str(count)]
            _measure(row, argv, timeout)
        rows.append(row)
    return rows


def _measure(row: Row, init_argv: list[str], timeout: float) -> None:
    argv = ["unshare", "--fork", "--pid", "--mount-proc", "--kill-child", *init_argv]
    process = subprocess.Popen(
        argv,
        env=clean_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    deadline = time.monotonic() + timeout
    try:
        lines = _Lines(process.stdout.fileno())
        start = lines.wait_for("start", deadline)
        if start is None:
            row.note = "the loop did not start"
            return
        started = time.monotonic()
        init = _pid1(process.pid)
        loop = _loop_pid(init, int(start.split()[1])) if init else None
        if init is None or loop is None:
            row.note = "could not find PID 1 and the loop in /proc"
            return
        cpu_before = procs.cpu_seconds(init)
        peak, loop_done, reaped, left = 0, None, None, -1
        while time.monotonic() < deadline:
            if loop_done is None and lines.poll("done"):
                loop_done = time.monotonic()
            waiting = [p for p in procs.all_procs() if p.ppid == init and p.pid != loop]
            peak = max(peak, sum(1 for p in waiting if p.state == "Z"))
            left = len(waiting)
            if loop_done is not None and not waiting:
                reaped = time.monotonic()
                break
            time.sleep(0.002)
        cpu_after = procs.cpu_seconds(init)
        if cpu_before is not None and cpu_after is not None:
            row.init_cpu_s = cpu_after - cpu_before
        row.peak_zombies, row.left = peak, left
        if loop_done is None or reaped is None:
            row.note = f"not finished within {timeout:.0f} s ({left} left)"
            return
        row.spawn_s = loop_done - started
        row.lag_ms = (reaped - loop_done) * 1000
        row.total_s = reaped - started
        process.stdin.write(b"\n")
        process.stdin.flush()
        row.exit_status = process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()  # --kill-child takes the whole namespace with it
            process.wait()
        process.stdin.close()
        process.stdout.close()


def _pid1(unshare_pid: int) -> int | None:
    """The host pid of the namespace's PID 1: the child unshare forked."""
    for _ in range(500):
        children = [p.pid for p in procs.all_procs() if p.ppid == unshare_pid]
        if children:
            return children[0]
        time.sleep(0.01)
    return None


def _loop_pid(init: int, pid_in_namespace: int) -> int | None:
    for proc in procs.all_procs():
        if proc.ppid == init and procs.ns_pid(proc.pid) == pid_in_namespace:
            return proc.pid
    return None


class _Lines:
    """Lines from the loop's stdout, read without blocking the sampling."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.seen: list[str] = []

    def _read(self, wait: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], wait)
        if ready:
            chunk = os.read(self.fd, 4096)
            if not chunk:
                raise EOFError("the loop's output ended")
            self.buffer += chunk
            *complete, self.buffer = self.buffer.split(b"\n")
            self.seen += [line.decode() for line in complete]

    def poll(self, prefix: str) -> str | None:
        try:
            self._read(0)
        except EOFError:
            return None
        return next((line for line in self.seen if line.startswith(prefix)), None)

    def wait_for(self, prefix: str, deadline: float) -> str | None:
        while time.monotonic() < deadline:
            found = self.poll(prefix)
            if found is not None:
                return found
            try:
                self._read(min(0.1, max(0.0, deadline - time.monotonic())))
            except EOFError:
                return None
        return None
