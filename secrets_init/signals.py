"""Signal numbers, names, and the inbox that turns signals into readable bytes.

This module uses `_signal` rather than `signal`: the public module builds its
enums at import time, which costs more than the rest of PID 1's start-up.

The inbox is the self-pipe trick that CPython supports natively
(`set_wakeup_fd`): every signal we catch writes its number as one byte into a
pipe, so the supervisor can sleep in `select()` on that pipe (and on the
child's status pipe) with no periodic wake-ups, and never loses a signal that
arrives while it is busy. The fault signals (SIGSEGV and the like) come
through a second descriptor, a signalfd, for the reasons given at
`SYNCHRONOUS`.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # `signal` without its enums
import os
import sys

from secrets_init import libc

# Annotations only: PID 1 imports this module, and collections.abc (through collections)
# or typing would add a millisecond or more to every container start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import types

NSIG: int = _signal.NSIG
SIGCHLD: int = _signal.SIGCHLD
SIGCONT: int = _signal.SIGCONT
SIGHUP: int = _signal.SIGHUP
SIGINT: int = _signal.SIGINT
SIGKILL: int = _signal.SIGKILL
SIGPIPE: int = _signal.SIGPIPE
SIGQUIT: int = _signal.SIGQUIT
SIGSTOP: int = _signal.SIGSTOP
SIGTERM: int = _signal.SIGTERM
SIGTSTP: int = _signal.SIGTSTP
SIGTTIN: int = _signal.SIGTTIN
SIGTTOU: int = _signal.SIGTTOU
SIGURG: int = _signal.SIGURG
SIGWINCH: int = _signal.SIGWINCH
SIGXFSZ: int = _signal.SIGXFSZ

# The signals the kernel sends a process for its own faults (a bad address, an
# illegal instruction). With a Python-level handler a real fault would loop
# forever: the C handler only sets a flag and returns to the faulting
# instruction. Without one, a SIGSEGV sent with kill() would kill secrets-init
# (leaving the program orphaned), or, as PID 1, be dropped. So the supervisor
# keeps them blocked and reads them from a signalfd: a blocked signal is
# queued, even for PID 1, until it is read, while a real fault of a blocked
# signal still kills (the kernel unblocks it and restores its default action).
# `SignalInbox.drain` forwards only those that another process sent.
SYNCHRONOUS = frozenset(
    getattr(_signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS")
    if hasattr(_signal, name)
)
_UNCATCHABLE = frozenset((SIGKILL, SIGSTOP))
# si_code of a signal sent by a process: kill(), sigqueue(), tgkill().
_SI_USER, _SI_QUEUE, _SI_TKILL = 0, -1, -6
_SIGNALFD_SIGINFO_SIZE = 128
# Linux's first real-time signal; the C library keeps those below its SIGRTMIN
# (32 and 33 with glibc) for its threads, and refuses handlers for them.
_KERNEL_SIGRTMIN = 32
# Default action "stop" or "ignore"; every other signal ends a process by default.
_HARMLESS_BY_DEFAULT = frozenset(
    (SIGCHLD, SIGCONT, SIGURG, SIGWINCH, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU)
)

JOB_CONTROL = frozenset((SIGTSTP, SIGTTIN, SIGTTOU))
# Signals that end secrets-init while it is still resolving secrets.
STOP_RESOLVING = frozenset((SIGTERM, SIGINT, SIGQUIT, SIGHUP))


def _name_table() -> dict[str, int]:
    table = {
        name[3:]: value
        for name, value in vars(_signal).items()
        if name.startswith("SIG") and not name.startswith("SIG_") and isinstance(value, int)
    }
    table.pop("RTMIN", None)
    table.pop("RTMAX", None)
    return table


def parse_signal(text: str) -> int:
    """Accept `TERM`, `SIGTERM`, `15`, `RTMIN+2` or `RTMAX-1`; 0 means "drop"."""
    spec = text.strip().upper()
    if spec.isdigit():
        number = int(spec)
        if 0 <= number < NSIG:
            return number
        raise ValueError(f"signal number out of range: {text!r}")
    spec = spec.removeprefix("SIG")
    for base_name, base in (("RTMIN", _signal.SIGRTMIN), ("RTMAX", _signal.SIGRTMAX)):
        if spec.startswith(base_name):
            offset_text = spec[len(base_name) :] or "+0"
            if offset_text[0] in "+-" and offset_text[1:].isdigit():
                number = int(base) + int(offset_text)
                if _signal.SIGRTMIN <= number <= _signal.SIGRTMAX:
                    return number
            raise ValueError(f"bad real-time signal: {text!r}")
    table = _name_table()
    if spec in table:
        return table[spec]
    raise ValueError(f"unknown signal: {text!r}")


def signal_name(number: int) -> str:
    """A readable name for log lines (`SIGTERM`, `SIGRTMIN+3`)."""
    for name, value in sorted(_name_table().items()):
        if value == number and name not in ("IOT", "POLL", "CLD"):
            return "SIG" + name
    if _signal.SIGRTMIN <= number <= _signal.SIGRTMAX:
        return f"SIGRTMIN+{number - _signal.SIGRTMIN}"
    return f"signal {number}"


def reserved(number: int) -> bool:
    """A real-time signal the C library keeps for its threads (32 and 33 with glibc)."""
    first_free: int = _signal.SIGRTMIN
    return _KERNEL_SIGRTMIN <= number < first_free


def never_forwarded(number: int) -> str | None:
    """Why a received `number` can never reach the program (so no rewrite of it can fire)."""
    if number in _UNCATCHABLE:
        return "cannot be caught"
    if reserved(number):
        return "is reserved by the C library for its threads and cannot be caught"
    if number == SIGCHLD:
        return "is how secrets-init learns that a child exited; it is never forwarded"
    return None


def ends_by_default(number: int) -> bool:
    """Whether `number`, with its default action, ends the process it reaches."""
    return number not in _HARMLESS_BY_DEFAULT


def _handled_signals() -> list[int]:
    """The signals that get a Python-level handler (the fault signals go to the signalfd)."""
    return [n for n in range(1, NSIG) if n not in _UNCATCHABLE and n not in SYNCHRONOUS]


def _note(signum: int, frame: types.FrameType | None) -> None:
    """The wakeup fd already recorded the signal; the handler only has to exist."""


class SignalInbox:
    """Catches every catchable signal and queues its number, readable from `read_fds`."""

    def __init__(self) -> None:
        self._pipe_read, self._pipe_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _signal.set_wakeup_fd(self._pipe_write, warn_on_full_buffer=False)
        for number in _handled_signals():
            try:
                _signal.signal(number, _note)
            except (OSError, ValueError):
                # glibc reserves 32 and 33 for its threads; they cannot be caught.
                pass
        self._faults = _open_signalfd(SYNCHRONOUS)
        self.read_fds = (self._pipe_read,) if self._faults < 0 else (self._pipe_read, self._faults)
        # The single-file launcher blocks every signal until now, so that what
        # arrives while it unpacks and Python starts stays pending instead of
        # being dropped (PID 1 drops signals it has no handler for). Without a
        # signalfd the fault signals keep their default action, as before.
        _signal.pthread_sigmask(_signal.SIG_SETMASK, SYNCHRONOUS if self._faults >= 0 else ())

    def drain(self) -> list[int]:
        """Signal numbers received since the last drain (in arrival order, fault signals last)."""
        received = list(_read_available(self._pipe_read))
        if self._faults >= 0:
            records = _read_available(self._faults)
            for start in range(0, len(records), _SIGNALFD_SIGINFO_SIZE):
                number = int.from_bytes(records[start : start + 4], sys.byteorder)
                code = int.from_bytes(records[start + 8 : start + 12], sys.byteorder, signed=True)
                # Anything else is no process's request to pass on (the kernel's
                # asynchronous SIGBUS for a memory error in a page we do not use).
                if code in (_SI_USER, _SI_QUEUE, _SI_TKILL):
                    received.append(number)
        return received

    def detach(self) -> None:
        """Forget the inbox in a forked child, which must not write into our pipe."""
        _signal.set_wakeup_fd(-1)
        for fd in (self._pipe_read, self._pipe_write, self._faults):
            if fd >= 0:
                os.close(fd)


def _open_signalfd(numbers: frozenset[int]) -> int:
    """A non-blocking signalfd for `numbers`, or -1 where there is none (no `_ctypes`, seccomp)."""
    bits = sum(1 << (number - 1) for number in numbers)
    word = 8 if sys.maxsize > 2**32 else 4  # sigset_t is an array of unsigned long
    sigset = bits.to_bytes(word, sys.byteorder).ljust(128, b"\0")  # glibc's sizeof(sigset_t)
    try:
        return libc.call("signalfd", -1, sigset, os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return -1


def _read_available(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def ignore(number: int) -> object:
    """Ignore `number`; returns its disposition until now, for `restore`."""
    return _signal.signal(number, _signal.SIG_IGN)


def restore(number: int, disposition: object) -> None:
    _signal.signal(number, disposition)


def reset_for_exec(keep_python_ignores: bool = False) -> None:
    """Give the program default dispositions and an empty signal mask.

    Python ignores SIGPIPE and SIGXFSZ, and exec keeps ignored signals
    ignored, so without this the program would silently inherit them; the
    mask holds the fault signals that PID 1 reads from its signalfd (and,
    from the single-file launcher, every signal), and exec keeps it too.
    `keep_python_ignores` is for the resolving phase, where the SDKs still
    rely on EPIPE instead of being killed by SIGPIPE.
    """
    for number in _handled_signals():
        if keep_python_ignores and number in (SIGPIPE, SIGXFSZ):
            continue
        try:
            _signal.signal(number, _signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
