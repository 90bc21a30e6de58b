"""Watch one process with ptrace: which signals reach it, who sent them, and when it ends.

A PID-1 test cannot look at what is left of a process tree once PID 1 has
exited, because the kernel then kills the whole namespace; whatever PID 1
did or failed to do to its leftovers looks the same afterwards. A tracer
sees each signal as it is delivered, with its sender (as the traced process
numbers it: 1 is its namespace's init), and holds the process at its exit
until the test has looked around.

    witness = Witness.seize(pid)  # before anything is sent to it
    ...  # make it happen
    seen = witness.follow(at_exit=lambda: ..., timeout=20)
    seen.signals  # [(signal number, sender pid), ...]

Only the thread that seized may follow (a ptrace rule).
"""

from __future__ import annotations

import ctypes
import os
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_PTRACE_CONT = 7
_PTRACE_GETSIGINFO = 0x4202
_PTRACE_SEIZE = 0x4206
_PTRACE_O_TRACEEXIT = 0x40
_PTRACE_EVENT_EXIT = 6
_PTRACE_EVENT_STOP = 128
_WALL = 0x40000000  # __WALL: wait for a traced process that is not our child
_SIGINFO = struct.Struct("iii4xi")  # si_signo, si_errno, si_code, then si_pid (64-bit ABI)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long


def _ptrace(
    request: int, pid: int, addr: int = 0, data: int | ctypes.Array[ctypes.c_char] = 0
) -> None:
    pointer = ctypes.cast(data, ctypes.c_void_p) if isinstance(data, ctypes.Array) else data
    if _libc.ptrace(request, pid, addr, pointer) == -1:
        number = ctypes.get_errno()
        raise OSError(number, f"ptrace({request:#x}, {pid}): {os.strerror(number)}")


@dataclass
class Seen:
    signals: list[tuple[int, int]] = field(default_factory=list)  # (number, sender pid)
    exit_status: int | None = None  # as os.waitpid reports it; None: still running
    stopped_at_exit: bool = False  # held at its exit while `at_exit` ran


@dataclass
class Witness:
    pid: int

    @classmethod
    def seize(cls, pid: int) -> Witness:
        """Trace `pid` from now on, without stopping it."""
        _ptrace(_PTRACE_SEIZE, pid, 0, _PTRACE_O_TRACEEXIT)
        return cls(pid)

    def follow(self, at_exit: Callable[[], None] = lambda: None, timeout: float = 20) -> Seen:
        """Let it run until it has exited, recording every signal delivered to it.

        `at_exit` runs while the process is held at its exit: nobody (PID 1
        included) has been told that it ended yet. On timeout it is killed.
        """
        seen = Seen()
        failure: Exception | None = None
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG | _WALL)
            if pid == 0:
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, _WALL)
                    raise AssertionError(f"{self.pid} was still running after {timeout}s")
                time.sleep(0.005)
                continue
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                seen.exit_status = status
                if failure is not None:
                    raise failure
                return seen
            event, number = status >> 16, os.WSTOPSIG(status)
            deliver = 0
            if event == _PTRACE_EVENT_EXIT:
                seen.stopped_at_exit = True
                try:
                    at_exit()
                except Exception as error:  # noqa: BLE001 - raised once it has exited
                    failure = error
            elif event == 0:  # signal-delivery-stop
                info = ctypes.create_string_buffer(128)
                _ptrace(_PTRACE_GETSIGINFO, self.pid, 0, info)
                _, _, _, sender = _SIGINFO.unpack_from(info.raw)
                seen.signals.append((number, sender))
                deliver = number
            elif event != _PTRACE_EVENT_STOP:
                raise AssertionError(f"unexpected ptrace stop {status:#x} of {self.pid}")
            _ptrace(_PTRACE_CONT, self.pid, 0, deliver)
