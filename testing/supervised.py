"""A long-running secrets-init around testing/recorder.py, watched from outside.

`testing.process.run` is for runs that end by themselves; this is for the
ones a test signals, stops and inspects while they run. Both build argv and
environment the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from testing import process

RECORDER = str(Path(__file__).resolve().parent / "recorder.py")

T = TypeVar("T")


def wait_for(predicate: object, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def proc_state(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    raise AssertionError("no State line")


def init_pid(proc: subprocess.Popen[bytes], pid1: bool) -> int:
    """Host pid of the secrets-init that `proc` started: `proc` itself, or under `process.as_pid1`
    unshare's one child (the namespace's PID 1), once unshare has forked it."""
    if not pid1:
        return proc.pid
    wait_for(lambda: children_of(proc.pid), what="unshare's child")
    return children_of(proc.pid)[0]


@contextlib.contextmanager
def stopping(stop: Callable[[T], object]) -> Iterator[list[T]]:
    """A list for the processes a test starts; each gets `stop` when the test ends, pass or fail,
    so none outlives its test (a fixture yields the list)."""
    started: list[T] = []
    try:
        yield started
    finally:
        for item in started:
            stop(item)


def readable_memory(pid: int) -> bytes:
    """Every readable mapping of `pid`, joined: where a value a process once held would still be.
    Mappings that vanish or cannot be read while we look are passed over."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if "r" not in perms:
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except (OSError, OverflowError, ValueError):
                continue
    return b"".join(chunks)


class Supervised:
    """secrets-init [options] -- recorder.py DIR [recorder args], maybe as PID 1."""

    def __init__(
        self,
        tmp: Path,
        options: list[str] = (),  # type: ignore[assignment]
        recorder_args: list[str] = (),  # type: ignore[assignment]
        pid1: bool = False,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
        ignoring: list[int] = (),  # type: ignore[assignment]
    ) -> None:
        self.dir = tmp
        argv = [*process.command(), *options, "--"]
        argv += command or [sys.executable, RECORDER, str(tmp), *recorder_args]
        argv = process.started_with(argv, ignoring)
        if pid1:
            argv = process.as_pid1(argv)
        self.proc = subprocess.Popen(
            argv,
            env=env or process.child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.pid1 = pid1
        self._init_pid: int | None = None

    @property
    def init_pid(self) -> int:
        """Host pid of the secrets-init process (the namespace's PID 1 when pid1)."""
        if self._init_pid is None:
            self._init_pid = init_pid(self.proc, self.pid1)
        return self._init_pid

    def ready(self, role: str = "child") -> int:
        path = self.dir / f"{role}.ready"
        wait_for(path.exists, timeout=20, what=f"{role} ready")
        return int(path.read_text())

    def send(self, number: int) -> None:
        os.kill(self.init_pid, number)

    def received(self, pid: int) -> list[int]:
        path = self.dir / f"{pid}.signals"
        if not path.exists():
            return []
        return [int(line) for line in path.read_text().split()]

    def wait_received(self, pid: int, number: int) -> None:
        wait_for(lambda: number in self.received(pid), what=f"signal {number} at {pid}")

    def finish(self, timeout: float = 20) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            for child in children_of(self.init_pid):
                try:
                    os.killpg(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.communicate(timeout=10)
