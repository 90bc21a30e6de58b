"""Signal numbers, names, and the inbox where the supervisor reads the signals it receives.

This module uses `_signal` rather than `signal`: the public module builds its
enums at import time, which costs more than the rest of PID 1's start-up.

The inbox is tini's way: every catchable signal is blocked, so the kernel
queues it (even for PID 1, which drops signals it has no handler for) until
the supervisor takes it with sigtimedwait(). There are no handlers, no pipe,
and nothing to install per signal, which is why the wrapper's start-up does
not grow with the number of signals; and a signal that arrives while the
supervisor is busy waits in the kernel's queue instead of being lost. When
the supervisor must also watch descriptors (a resolving child's status pipe,
a refresh child's report), a signalfd makes "a signal is queued" one more
readable descriptor for select(), opened only then (see `SignalInbox.wait`).
"""

import _signal  # type: ignore[import-not-found]  # `signal` without its enums
import os
import sys

from secrets_init import libc

# Annotations only: PID 1 imports this module, and collections.abc (through collections)
# or typing would add a millisecond or more to every container start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

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
# illegal instruction). Blocked like the others: a real fault of a blocked
# signal still kills (the kernel unblocks it and restores its default action),
# while one sent with kill() is queued like any other signal. A Python-level
# handler would be worse: on a real fault it would loop forever, since the C
# handler only sets a flag and returns to the faulting instruction.
# `SignalInbox` passes on only those that another process sent.
SYNCHRONOUS = frozenset(
    getattr(_signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS")
    if hasattr(_signal, name)
)
_UNCATCHABLE = frozenset((SIGKILL, SIGSTOP))
# si_code of a signal sent by a process: kill(), sigqueue(), tgkill().
_SI_USER, _SI_QUEUE, _SI_TKILL = 0, -1, -6
# Linux's first real-time signal; the C library keeps those below its SIGRTMIN
# (32 and 33 with glibc) for its threads, and refuses handlers for them.
_KERNEL_SIGRTMIN = 32
# How often `SignalInbox.wait` looks at the queue when it must also watch
# descriptors and no signalfd can be had.
_NO_SIGNALFD_POLL = 0.05
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


def catchable() -> set[int]:
    """Every signal but KILL and STOP (and the two that glibc keeps for its threads)."""
    numbers: set[int] = _signal.valid_signals() - _UNCATCHABLE
    return numbers


class SignalInbox:
    """Every catchable signal, blocked from now on and queued by the kernel until read here.

    Made first thing at start-up (see `secrets_init.cli`), before anything can
    fail or take time: a TERM sent while secrets are being fetched must not
    be lost. Children forked from PID 1 inherit the mask, and unblock what
    they need (`reset_for_exec`); threads (`--check`'s fetches) inherit it
    too, so every signal waits here for the main thread.
    """

    def __init__(self) -> None:
        # SIGCHLD ignored (inherited across exec from whoever started us) would
        # make the kernel reap our children itself: no exit status to pass on.
        _signal.signal(SIGCHLD, _signal.SIG_DFL)
        # The single-file launcher blocks every signal before Python starts,
        # so that nothing is dropped meanwhile; here that becomes for good.
        self._catchable = catchable()
        _signal.pthread_sigmask(_signal.SIG_BLOCK, self._catchable)
        self._signalfd: int | None = None  # opened by the first wait that watches descriptors

    def wait(
        self, fds: "Sequence[int]" = (), timeout: float | None = None
    ) -> tuple[set[int], list[int]]:
        """Sleep until a signal is queued, one of `fds` is readable, or `timeout` seconds pass.

        Returns the readable descriptors and the signals received, in the
        order the kernel hands them over: standard signals by number, then
        real-time ones in the order they were sent. (A standard signal sent
        again before it was taken is one, as for any process; tini and
        dumb-init, which also take blocked signals, are the same.) Fault
        signals that no process sent are left out. With no descriptors to
        watch, the sleep is in sigtimedwait() itself; otherwise in select(),
        on `fds` and a signalfd.
        """
        if not fds:
            if timeout is None:
                first = _signal.sigwaitinfo(self._catchable)
            else:
                first = _signal.sigtimedwait(self._catchable, max(timeout, 0.0))
            return set(), self._received(first)
        import select  # only here: PID 1 without descriptors to watch never needs it

        readiness = self._readiness()
        watched = [*fds, readiness] if readiness >= 0 else list(fds)
        if readiness < 0:  # no signalfd: come back every 50 ms to look at the queue
            timeout = _NO_SIGNALFD_POLL if timeout is None else min(timeout, _NO_SIGNALFD_POLL)
        ready, _, _ = select.select(watched, [], [], timeout)
        return set(ready) & set(fds), self._received(None)

    def _received(self, first: object) -> list[int]:
        """`first`, if any, then every signal still queued, as numbers to act on."""
        received = []
        info = first
        while True:
            if info is not None:
                number: int = info.si_signo  # type: ignore[attr-defined]
                code: int = info.si_code  # type: ignore[attr-defined]
                # A fault signal that no process sent is no request to pass
                # on (the kernel's asynchronous SIGBUS for a memory error in
                # a page we do not use).
                if number not in SYNCHRONOUS or code in (_SI_USER, _SI_QUEUE, _SI_TKILL):
                    received.append(number)
            info = _signal.sigtimedwait(self._catchable, 0)
            if info is None:
                return received

    def _readiness(self) -> int:
        """A signalfd, readable while a signal is queued; -1 where there is none."""
        if self._signalfd is None:
            self._signalfd = _open_signalfd(self._catchable)
        return self._signalfd

    def detach(self) -> None:
        """In a forked child: close PID 1's signalfd (the child unblocks in `reset_for_exec`)."""
        if self._signalfd is not None and self._signalfd >= 0:
            os.close(self._signalfd)
        self._signalfd = None


def _open_signalfd(numbers: set[int]) -> int:
    """A non-blocking signalfd for `numbers`, or -1 where there is none (no `_ctypes`, seccomp)."""
    bits = sum(1 << (number - 1) for number in numbers)
    # sigset_t: an array of unsigned long, 128 bytes in glibc, of which the
    # kernel reads the first 8 (64 signals).
    word = 8 if sys.maxsize > 2**32 else 4
    words = [(bits >> (index * word * 8)) % (1 << (word * 8)) for index in range(128 // word)]
    sigset = b"".join(value.to_bytes(word, sys.byteorder) for value in words)
    try:
        return libc.call("signalfd", -1, sigset, os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return -1


def ignore(number: int) -> object:
    """Ignore `number`; returns its disposition until now, for `restore`."""
    return _signal.signal(number, _signal.SIG_IGN)


def restore(number: int, disposition: object) -> None:
    _signal.signal(number, disposition)


def reset_for_exec(keep_python_ignores: bool = False) -> None:
    """Give the program default dispositions and an empty signal mask.

    Python ignores SIGPIPE and SIGXFSZ, and exec keeps ignored signals
    ignored (as it does any that secrets-init itself was started with), so
    without this the program would silently inherit them; the mask holds
    every signal, as PID 1 blocks them (see `SignalInbox`), and exec keeps
    it too.
    `keep_python_ignores` is for the resolving phase, where the SDKs still
    rely on EPIPE instead of being killed by SIGPIPE.
    """
    for number in catchable():
        if keep_python_ignores and number in (SIGPIPE, SIGXFSZ):
            continue
        _signal.signal(number, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
