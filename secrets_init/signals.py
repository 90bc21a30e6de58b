"""Signal numbers, names, and the inbox that turns signals into readable bytes.

This module uses `_signal` rather than `signal`: the public module builds its
enums at import time, which costs more than the rest of PID 1's start-up.

The inbox is the self-pipe trick that CPython supports natively
(`set_wakeup_fd`): every signal we catch writes its number as one byte into a
pipe, so the supervisor can sleep in `select()` on that pipe (and on the
child's status pipe) with no periodic wake-ups, and never loses a signal that
arrives while it is busy.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # `signal` without its enums
import os
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
SIGXFSZ: int = _signal.SIGXFSZ

# Signals that only make sense as synchronous faults of our own process; a
# Python-level handler for them would loop forever on a real fault.
_SYNCHRONOUS = frozenset(
    getattr(_signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS")
    if hasattr(_signal, name)
)
_UNCATCHABLE = frozenset((SIGKILL, SIGSTOP))

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


def catchable_signals() -> list[int]:
    return [n for n in range(1, NSIG) if n not in _UNCATCHABLE and n not in _SYNCHRONOUS]


def _note(signum: int, frame: types.FrameType | None) -> None:
    """The wakeup fd already recorded the signal; the handler only has to exist."""


class SignalInbox:
    """Catches every catchable signal and queues its number in a pipe."""

    def __init__(self) -> None:
        self.read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for number in catchable_signals():
            try:
                _signal.signal(number, _note)
            except (OSError, ValueError):
                # glibc reserves 32 and 33 for its threads; they cannot be caught.
                pass
        # The single-file launcher blocks every signal until now, so that what
        # arrives while it unpacks and Python starts stays pending instead of
        # being dropped (PID 1 drops signals it has no handler for).
        _signal.pthread_sigmask(_signal.SIG_SETMASK, ())

    def drain(self) -> list[int]:
        """Signal numbers received since the last drain, in arrival order."""
        received: list[int] = []
        while True:
            try:
                chunk = os.read(self.read_fd, 4096)
            except BlockingIOError:
                return received
            if not chunk:
                return received
            received.extend(chunk)

    def detach(self) -> None:
        """Forget the inbox in a forked child, which must not write into our pipe."""
        _signal.set_wakeup_fd(-1)
        os.close(self.read_fd)
        os.close(self._write_fd)


def reset_for_exec(keep_python_ignores: bool = False) -> None:
    """Give the program default dispositions and an empty signal mask.

    Python ignores SIGPIPE and SIGXFSZ, and exec keeps ignored signals
    ignored, so without this the program would silently inherit them.
    `keep_python_ignores` is for the resolving phase, where the SDKs still
    rely on EPIPE instead of being killed by SIGPIPE.
    """
    for number in catchable_signals():
        if keep_python_ignores and number in (SIGPIPE, SIGXFSZ):
            continue
        try:
            _signal.signal(number, _signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
