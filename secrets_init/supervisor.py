"""PID 1: start the child, forward signals to it, reap zombies, exit with its status.

The supervisor sleeps in select() on these descriptors and nothing else:
- the signal inbox, which holds the number of every signal received;
- the child's status pipe, a close-on-exec pipe whose end-of-file tells us
  the child has exec'd the program (until then it is still resolving
  secrets, and signals for the program are held back, not lost).

Right after the fork it moves to `/`: PID 1 lives as long as the container,
and a working directory kept on a volume would keep that volume busy (it
could not be unmounted) for that whole life. The child keeps the directory
it was started in, and the program starts there.

Standard library only: this process lives as long as the container.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable

from secrets_init import exits, libc, signals, terminal
from secrets_init.config import Settings
from secrets_init.log import Logger

# How long a child told to stop while resolving may take to clean up before it is killed.
_RESOLVING_GRACE = 2.0


class _State:
    __slots__ = ("child", "exit_status", "held", "program_running", "terminal")

    def __init__(self, child: int, terminal: bool) -> None:
        self.child = child
        # We lead the session of the terminal that the child's group is given.
        self.terminal = terminal
        self.program_running = False  # the child has exec'd the program
        self.held: list[int] = []  # signals that arrived before that
        self.exit_status: int | None = None  # the main child's status, as we will exit


def become_subreaper() -> None:
    """Adopt orphans of the program when we are not PID 1 (the local shell case)."""
    pr_set_child_subreaper = 36
    if libc.call("prctl", pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        raise OSError("prctl(PR_SET_CHILD_SUBREAPER) failed")


def exit_status_of(wait_status: int) -> int:
    """Shell convention: the exit code, or 128+N for death by signal N."""
    if os.WIFSIGNALED(wait_status):
        return exits.killed_by(os.WTERMSIG(wait_status))
    return os.waitstatus_to_exitcode(wait_status)


def supervise(
    settings: Settings,
    inbox: signals.SignalInbox,
    start_child: Callable[[], None],
    log: Logger,
) -> int:
    """Fork, run `start_child()` in the child, and supervise until done.

    The child keeps the write end of the status pipe open until its exec
    closes it, which is how we learn the program is running.
    """
    status_read, status_write = os.pipe2(os.O_CLOEXEC)
    leads_terminal = terminal.led_by(os.getpid())
    child = os.fork()
    if child == 0:
        os.close(status_read)
        inbox.detach()
        start_child()
        os._exit(exits.ERROR)  # start_child never returns; this is belt and braces
    os.close(status_write)
    os.chdir("/")
    state = _State(child, leads_terminal)
    log.debug(f"started child {child}")

    watched = [*inbox.read_fds, status_read]
    while True:
        try:
            ready, _, _ = select.select(watched, [], [])
        except InterruptedError:
            continue
        if status_read in ready and not os.read(status_read, 64):
            watched.remove(status_read)
            os.close(status_read)
            state.program_running = True
            for number in state.held:
                _forward(settings, state, number, log)
            state.held.clear()
        for number in inbox.drain() if set(inbox.read_fds) & set(ready) else ():
            status = _on_signal(settings, state, number, log)
            if status is not None:
                return status


def _on_signal(settings: Settings, state: _State, number: int, log: Logger) -> int | None:
    """Handle one received signal; a return value means: exit with it now."""
    if number == signals.SIGCHLD:
        return _reap(settings, state, log)
    if not state.program_running:
        if number in signals.STOP_RESOLVING and state.exit_status is None:
            name = signals.signal_name(number)
            log.info(f"received {name} while resolving secrets; not starting the program")
            # TERM first (and CONT, should it be stopped): the child holds TERM
            # only while a secret file is staged beside its destination, and
            # removes that file before it dies of it. KILL if it lingers.
            _kill(state.child, signals.SIGTERM)
            _kill(state.child, signals.SIGCONT)
            if not _exited_within(state.child, _RESOLVING_GRACE):
                _kill(state.child, signals.SIGKILL)
                _wait_for(state.child)
            return exits.killed_by(number)
        state.held.append(number)
        return None
    _forward(settings, state, number, log)
    return None


def _forward(settings: Settings, state: _State, received: int, log: Logger) -> None:
    number = settings.rewrite.get(received, received)
    if number == 0:
        log.debug(f"dropped {signals.signal_name(received)} (rewritten to 0)")
        return
    suspend = number in signals.JOB_CONTROL
    if suspend:
        # A default-action SIGTSTP is ignored by the orphaned process group that
        # setsid() created, so the program is stopped with SIGSTOP instead.
        number = signals.SIGSTOP
    target = -state.child if settings.signal_mode == "group" else state.child
    log.debug(f"forwarding {signals.signal_name(number)} to {target}")
    _kill(target, number)
    if signals.ends_by_default(number) and _is_stopped(state.child):
        # A stopped program runs no handler: its TERM would wait for a SIGCONT
        # that nobody sends (Ctrl-Z with no shell to type `fg` in, or a
        # forwarded TSTP), so it is woken to act on what it was sent.
        log.debug(f"waking stopped {target} with SIGCONT")
        _kill(target, signals.SIGCONT)
    if suspend and os.getpid() != 1 and not state.terminal:
        # So that the shell we are a job of sees its job stop. A session
        # leader is nobody's job: no shell would ever continue it.
        os.kill(os.getpid(), signals.SIGSTOP)


def _is_stopped(pid: int) -> bool:
    """The state letter in /proc/PID/stat, after the command name in parentheses."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return False
    return fields[:1] == [b"T"]


def _reap(settings: Settings, state: _State, log: Logger) -> int | None:
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG | os.WUNTRACED | os.WCONTINUED)
        except ChildProcessError:
            # Nobody left. With --wait-all that is when we are done.
            return state.exit_status if state.exit_status is not None else exits.ERROR
        if pid == 0:
            return None
        if os.WIFSTOPPED(wait_status) or os.WIFCONTINUED(wait_status):
            if pid == state.child and state.terminal:
                _pass_terminal(state, stopped=os.WIFSTOPPED(wait_status), log=log)
            continue
        if pid != state.child:
            log.debug(f"reaped orphan {pid}")
            continue
        state.exit_status = exit_status_of(wait_status)
        log.debug(f"child {pid} exited, status {state.exit_status}")
        if not settings.wait_all:
            # What is left of the program's group is told to go, as dumb-init does.
            _kill(-state.child, signals.SIGTERM)
            return state.exit_status


def _pass_terminal(state: _State, stopped: bool, log: Logger) -> None:
    """The terminal is ours while the program is stopped, and the program's again when it continues.

    With no shell to type `fg` in, a program stopped by Ctrl-Z would otherwise
    keep the terminal while it can act on nothing: the next Ctrl-C would wait
    in it for a SIGCONT that never comes. Ours, that Ctrl-C is forwarded with
    a SIGCONT after it (see `_forward`). See also `secrets_init.terminal`.
    """
    holder, taker = (state.child, os.getpgrp()) if stopped else (os.getpgrp(), state.child)
    if terminal.foreground() == holder and terminal.give_foreground(taker):
        who = "secrets-init" if stopped else "the program"
        log.debug(f"the program {'stopped' if stopped else 'continued'}; the terminal is {who}'s")


def _kill(target: int, number: int) -> None:
    try:
        os.kill(target, number)
    except ProcessLookupError:
        pass
    except PermissionError:
        pass


def _exited_within(pid: int, seconds: float) -> bool:
    """Reap `pid` if it exits within `seconds`; False if it is still there."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def _wait_for(pid: int) -> None:
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except InterruptedError:
            continue
        except ChildProcessError:
            return
