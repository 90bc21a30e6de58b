"""Rotation, PID 1's half: when to refresh, what it keeps between refreshes, and what it hears.

With `--refresh`, every reference is fetched again on a timer, in a
short-lived child of PID 1 (`secrets_init.refresh`, the child's half), as
the first resolution is; PID 1 only decides when, and acts on the child's
report: nothing, a signal to the program (a secret file was replaced), or
stopping the program to restart it or to exit (an environment value
changed).

What PID 1 keeps, and why it reveals no value
---------------------------------------------
To tell "changed" from "unchanged", PID 1 keeps one digest per variable:
HMAC-SHA256 of the variable's name and value under a key of 32 random bytes
made for this run. The key is not in PID 1: the first resolving child makes
it and sends it as one datagram into a socket pair that PID 1 created before
the fork; each refresh child reads it with MSG_PEEK, which leaves it there
for the next one. PID 1 holds the two descriptors and never reads them.

- A copy of PID 1's memory (a core dump, `/proc/1/mem`, its pages in swap, a
  debugger attached to it) holds digests without their key: no value can be
  computed from them, and no guess tested against them, however weak the
  password. A plain hash (or a key kept next to the digests) would let anyone
  holding the copy confirm a guessed password offline.
- The key sits in a socket's receive queue, in kernel memory: not in PID 1's
  address space, not in a file, and a socket cannot be opened through
  `/proc/1/fd` the way a pipe or a memfd can. The descriptors are
  close-on-exec, so the program never has them.
- What this does not defend against, and cannot: whoever may ptrace PID 1
  (root in the container, or its user where ptrace is allowed) can make it do
  anything it can do, including fork a child that fetches every secret with
  its credentials; or read the program's environment. The key design only
  keeps PID 1's own memory free of anything that gives a value away.
- Version ids (AWS VersionId, SSM Version, Google's version number) would
  need no key, but they change when any key of a JSON secret changes, and a
  JSON-key reference must count as changed only when its selected value did;
  the providers also return values only. Digests of the value as the program
  receives it answer exactly the question asked.

The report
----------
A child writes its report to a pipe, one line per fact, hex-encoding names
(environment names are bytes, not always UTF-8) and paths; `end` closes it.
The pipe's write end is close-on-exec: its end of file, after `end`, tells a
child that became the program apart from one that exited. No value, and no
digest of one that PID 1 did not keep anyway, ever goes through it.

Standard library only, and none of hashlib, hmac, socket or random: this
module is imported by PID 1 (tests/test_pid1_imports.py). Measured: `hmac` and
`hashlib` would add 2.7 ms to every start and 3.8 MiB to PID 1's RSS for the
container's whole life; `_socket`, loaded only with `--refresh`, 0.3 ms and
0.4 MiB; this module itself 0.2 ms.
"""

from __future__ import annotations

import os
import time

_JITTER = 0.1  # each interval is the --refresh duration, plus or minus up to 10%

ACTIONS = ("none", "failed", "signal", "restart", "exit")


class Known:
    """What PID 1 remembers between refreshes: digests (never values), paths, and where it started.

    `cwd` is where the program was started, so that a restarted one starts
    there too (PID 1 itself moves to `/`). `paths` are the files that
    `tempfile` destinations got, whose names the first resolution chose, in
    `private_dir`.
    """

    __slots__ = ("cwd", "digests", "paths", "private_dir")

    def __init__(self, cwd: str) -> None:
        self.cwd = cwd
        self.digests: dict[bytes, bytes] = {}
        self.paths: dict[bytes, str] = {}
        self.private_dir: str | None = None

    def update(self, report: Report) -> None:
        self.digests.update(report.digests)
        self.paths.update(report.paths)
        if report.private_dir is not None:
            self.private_dir = report.private_dir


class Keyring:
    """The run's key, in a socket pair's queue rather than in PID 1's memory (see above)."""

    __slots__ = ("reader", "writer")

    def __init__(self) -> None:
        # `socket` without its enums; here, so that PID 1 loads it (0.3 ms,
        # ~0.4 MiB) only with --refresh.
        import _socket

        flags = _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC
        writer, reader = _socket.socketpair(_socket.AF_UNIX, flags)
        self.writer: int = writer.detach()
        self.reader: int = reader.detach()


class Channel:
    """The pipes between PID 1 and one resolving child: its report, and PID 1's go-ahead.

    The go-ahead is for a refresh child that will become the program: it
    waits for it until the program it replaces has exited.
    """

    __slots__ = ("go_read", "go_write", "keyring", "report_read", "report_write")

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self.report_read, self.report_write = os.pipe2(os.O_CLOEXEC)
        self.go_read, self.go_write = os.pipe2(os.O_CLOEXEC)

    def in_parent(self) -> None:
        os.close(self.report_write)
        os.close(self.go_read)

    def in_child(self) -> None:
        os.close(self.report_read)
        os.close(self.go_write)


# The channel of the forked child that resolves for the first time, set by the
# supervisor right after the fork (None in PID 1 and without --refresh).
child_channel: Channel | None = None


class Report:
    """A child's report, as PID 1 reads it."""

    __slots__ = (
        "action",
        "changed_env",
        "changed_files",
        "complete",
        "digests",
        "paths",
        "private_dir",
    )

    def __init__(self) -> None:
        self.action = "failed"
        self.changed_env: list[bytes] = []
        self.changed_files: list[bytes] = []
        self.digests: dict[bytes, bytes] = {}
        self.paths: dict[bytes, str] = {}
        self.private_dir: str | None = None
        self.complete = False  # `end` was read

    def names(self, which: list[bytes]) -> str:
        return ", ".join(name.decode("utf-8", "backslashreplace") for name in which)


def parse_report(data: bytes) -> Report:
    """Read what a child wrote; anything short of `end` is a failed refresh."""
    report = Report()
    for line in data.split(b"\n"):
        fields = line.split()
        try:
            if fields[:1] == [b"end"]:
                report.complete = report.action in ACTIONS
                break
            kind = fields[0]
            if kind == b"action":
                report.action = fields[1].decode()
                continue
            first = bytes.fromhex(fields[1].decode())
            if kind == b"digest":
                report.digests[first] = bytes.fromhex(fields[2].decode())
            elif kind == b"path":
                report.paths[first] = _text(bytes.fromhex(fields[2].decode()))
            elif kind == b"private":
                report.private_dir = _text(first)
            elif kind == b"env":
                report.changed_env.append(first)
            elif kind == b"file":
                report.changed_files.append(first)
        except (IndexError, ValueError):
            break
    if not report.complete:
        report.action = "failed"
    return report


def _text(path: bytes) -> str:
    return path.decode("utf-8", "surrogateescape")


def next_refresh(interval: float, now: float | None = None) -> float:
    """When the next refresh is due (time.monotonic()), jittered so that a fleet spreads out.

    The jitter comes from os.urandom: `random` would bring hashlib and more into PID 1.
    """
    fraction = int.from_bytes(os.urandom(2), "big") / 0xFFFF  # 0..1
    start = time.monotonic() if now is None else now
    return start + interval * (1 - _JITTER + 2 * _JITTER * fraction)
