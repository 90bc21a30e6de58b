"""PID 1: start the program, forward signals to it, reap zombies, exit with its status.

The program is started by a forked child that execs it, or, with nothing to
do before the exec, spawned directly (see `secrets_init.program`). Then the
supervisor sleeps in its signal inbox and wakes for nothing else:
- a signal received (every catchable one is queued there; see
  `secrets_init.signals`);
- while a forked child has not yet exec'd the program, that child's status
  pipe: a close-on-exec pipe whose end-of-file tells us the program runs
  (until then the child is still resolving secrets, and signals for the
  program are held back, not lost).

Right after the program is started it moves to `/`: PID 1 lives as long as the
container, and a working directory kept on a volume would keep that volume
busy (it could not be unmounted) for that whole life. The program starts in
the directory secrets-init was started in.

With `--refresh` (see `secrets_init.rotation`) it also watches the report of
the child that is resolving or refreshing, and the wait gets a timeout:
the next refresh, or the end of `--stop-timeout` for a program told to stop.
Between refreshes that timer is the only wake-up. A program told to stop for a
restart is replaced by the refresh child that found the change: it has the
new environment already, and execs once PID 1 has seen the old program exit.

Standard library only: this process lives as long as the container, and
its start-up is every container's: `secrets_init.rotation` is imported only
with `--refresh`, `secrets_init.terminal` only when a child is forked.
"""

import gc
import os
import time

from secrets_init import candidates, exits, signals
from secrets_init.config import Settings
from secrets_init.log import Logger

# Annotations only: PID 1 imports this module, and collections.abc (through collections)
# or typing would add a millisecond or more to every container start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from secrets_init.rotation import Channel, Report

# How long a child told to stop while resolving may take to clean up before it is killed.
_RESOLVING_GRACE = 2.0


class _State:
    __slots__ = ("child", "exit_status", "held", "program_running", "rotating", "terminal")

    def __init__(self, child: int, terminal: bool, rotating: "_Rotating | None") -> None:
        self.child = child
        # We lead the session of the terminal that the child's group is given.
        self.terminal = terminal
        self.program_running = False  # the child has exec'd the program
        self.held: list[int] = []  # signals that arrived before that
        self.exit_status: int | None = None  # the main child's status, as we will exit
        self.rotating = rotating  # None without --refresh


class _Rotating:
    """PID 1's side of `--refresh`: the timer, the reporting child, a stop under way."""

    __slots__ = (
        "buffer",
        "channel",
        "due",
        "first",
        "keyring",
        "known",
        "pid",
        "refresh_deadline",
        "reported",
        "shutting_down",
        "stop_deadline",
        "stopping_for",
        "successor",
    )

    def __init__(self, cwd: str) -> None:
        from secrets_init import rotation  # only with --refresh (the module docstring says why)

        self.keyring = rotation.Keyring()
        self.known = rotation.Known(cwd)
        self.due: float | None = None  # when the next refresh starts (time.monotonic())
        self.pid: int | None = None  # the refresh child, while it runs
        self.refresh_deadline: float | None = None  # when a refresh child is stuck past --timeout
        self.channel: Channel | None = None  # of the child whose report is awaited
        self.first = True  # that child is the first resolving child, not a refresh child
        self.buffer = b""
        self.reported = False  # that child's report has been acted on
        self.successor = False  # the refresh child will become the program
        self.stopping_for: str | None = None  # "restart" or "exit": the program was told to stop
        self.stop_deadline: float | None = None  # when it gets SIGKILL
        self.shutting_down = False  # TERM received: nothing new starts


def exit_status_of(wait_status: int) -> int:
    """Shell convention: the exit code, or 128+N for death by signal N."""
    if os.WIFSIGNALED(wait_status):
        return exits.killed_by(os.WTERMSIG(wait_status))
    return os.waitstatus_to_exitcode(wait_status)


def supervise_spawned(
    settings: Settings, inbox: signals.SignalInbox, child: int, held: list[int], log: Logger
) -> int:
    """Supervise a program that PID 1 spawned itself (see `secrets_init.program`): it runs.

    `held`: signals received before it was started, delivered to it now.
    """
    _keep_for_good()
    os.chdir("/")
    state = _State(child, terminal=False, rotating=None)
    state.held = held
    log.debug(f"started the program, pid {child}")
    _program_started(settings, state, log)
    return _supervise(settings, inbox, state, None, log)


def supervise_forked(
    settings: Settings,
    inbox: signals.SignalInbox,
    become_program: "Callable[[], None]",
    held: list[int],
    log: Logger,
) -> int:
    """Fork, run `become_program()` in the child, and supervise until done.

    The child keeps the write end of the status pipe open until its exec
    closes it, which is how we learn the program is running. `held`: signals
    received before the fork, for the program once it runs.
    """
    from secrets_init import terminal  # only here: a spawned program has no terminal to get

    status_read, status_write = os.pipe2(os.O_CLOEXEC)
    leads_terminal = terminal.led_by(os.getpid())
    rotating = None
    if settings.refresh is not None and candidates.has_references(os.environb):
        rotating = _Rotating(_working_directory())
        rotating.channel = _new_channel(rotating)
    _keep_for_good()
    child = os.fork()
    if child == 0:
        os.close(status_read)
        inbox.detach()
        if rotating is not None and rotating.channel is not None:
            from secrets_init import rotation

            rotating.channel.in_child()
            rotation.child_channel = rotating.channel
        become_program()
        os._exit(exits.ERROR)  # become_program never returns; this is belt and braces
    os.close(status_write)
    if rotating is not None and rotating.channel is not None:
        rotating.channel.in_parent()
    os.chdir("/")
    state = _State(child, leads_terminal, rotating)
    state.held = held
    log.debug(f"started child {child}")
    return _supervise(settings, inbox, state, status_read, log)


def _keep_for_good() -> None:
    """What PID 1 has built by now, it keeps for good: frozen, the collector
    never walks it again, here or in a forked child (whose copy-on-write pages
    a collection would copy). Collection was off since `secrets_init.cli`."""
    gc.freeze()
    gc.enable()


def _supervise(
    settings: Settings,
    inbox: signals.SignalInbox,
    state: "_State",
    status_read: int | None,
    log: Logger,
) -> int:
    """Sleep in the inbox and act on what wakes us, until it is time to exit."""
    rotating = state.rotating
    status_fds = [] if status_read is None else [status_read]
    while True:
        report_fds = [rotating.channel.report_read] if rotating and rotating.channel else []
        ready, received = inbox.wait([*status_fds, *report_fds], _timeout(rotating))
        # (a status pipe's number may be a report pipe's once it is closed)
        if status_fds and status_fds[0] in ready and not os.read(status_fds[0], 64):
            os.close(status_fds.pop())
            _program_started(settings, state, log)
        if rotating is not None:
            status = _on_rotation(settings, state, rotating, inbox, ready, log)
            if status is not None:
                return status
        for number in received:
            status = _on_signal(settings, state, number, log)
            if status is not None:
                return status


def _program_started(settings: Settings, state: _State, log: Logger) -> None:
    """The program runs: what was held for it is delivered now."""
    state.program_running = True
    for number in state.held:
        _forward(settings, state, number, log)
    state.held.clear()


def _working_directory() -> str:
    """Where a restarted program starts: where the first one did (PID 1 leaves it for `/`)."""
    try:
        return os.getcwd()
    except OSError:  # removed under us; the program then starts in `/` too
        return "/"


def _timeout(rotating: "_Rotating | None") -> float | None:
    """The wait's timeout: the next thing the clock decides, or None to sleep until woken."""
    if rotating is None:
        return None
    moments = [
        moment
        for moment in (rotating.due, rotating.stop_deadline, rotating.refresh_deadline)
        if moment is not None
    ]
    if not moments:
        return None
    return max(0.0, min(moments) - time.monotonic())


def _on_rotation(
    settings: Settings,
    state: _State,
    rotating: "_Rotating",
    inbox: signals.SignalInbox,
    ready: set[int],
    log: Logger,
) -> int | None:
    """Read a report, start a due refresh, kill a program that did not stop in time."""
    channel = rotating.channel
    if channel is not None and channel.report_read in ready:
        data = os.read(channel.report_read, 65536)
        if data:
            rotating.buffer += data
            if not rotating.reported and (b"\n" + rotating.buffer).endswith(b"\nend\n"):
                from secrets_init.rotation import parse_report

                rotating.reported = True
                _on_report(settings, state, rotating, parse_report(rotating.buffer), log)
        else:
            _report_closed(settings, state, rotating, log)
    now = time.monotonic()
    if rotating.stop_deadline is not None and now >= rotating.stop_deadline:
        rotating.stop_deadline = None
        log.info(f"the program did not stop within {settings.stop_timeout:g}s; sending SIGKILL")
        _kill(-state.child if settings.signal_mode == "group" else state.child, signals.SIGKILL)
    deadline = rotating.refresh_deadline
    if deadline is not None and now >= deadline:
        rotating.refresh_deadline = None
        if rotating.pid is not None and not rotating.successor:
            log.warning("refresh: still running well past --timeout; stopping it")
            _kill(rotating.pid, signals.SIGTERM)
            _kill(rotating.pid, signals.SIGCONT)
    if rotating.due is not None and now >= rotating.due:
        assert settings.refresh is not None
        rotating.due = _next_refresh(settings.refresh, now)
        if _may_refresh(state, rotating):  # a refresh still running: this one is skipped
            _start_refresh(settings, rotating, inbox, log)
            rotating.refresh_deadline = now + settings.timeout + _RESOLVING_GRACE
    return None


def _new_channel(rotating: "_Rotating") -> "Channel":
    from secrets_init.rotation import Channel

    return Channel(rotating.keyring)


def _next_refresh(interval: float, now: float | None = None) -> float:
    from secrets_init.rotation import next_refresh

    return next_refresh(interval, now)


def _may_refresh(state: _State, rotating: "_Rotating") -> bool:
    return (
        state.program_running
        and state.exit_status is None
        and rotating.pid is None
        and rotating.channel is None
        and rotating.stopping_for is None
        and not rotating.shutting_down
    )


def _start_refresh(
    settings: Settings, rotating: "_Rotating", inbox: signals.SignalInbox, log: Logger
) -> None:
    channel = _new_channel(rotating)
    pid = os.fork()
    if pid == 0:
        channel.in_child()
        inbox.detach()
        from secrets_init import refresh  # the child's half: never imported by PID 1

        refresh.refresh(settings, channel, rotating.known, log)
    channel.in_parent()
    rotating.pid, rotating.channel, rotating.first = pid, channel, False
    rotating.buffer, rotating.reported, rotating.successor = b"", False, False
    log.debug(f"refreshing secrets in child {pid}")


def _on_report(
    settings: Settings, state: _State, rotating: "_Rotating", report: "Report", log: Logger
) -> None:
    """Act on a complete report: the first resolution's, or a refresh's."""
    if rotating.first:  # the first resolution: what is known, and the timer
        rotating.known.update(report)
        assert settings.refresh is not None
        rotating.due = _next_refresh(settings.refresh)
        return
    if state.exit_status is not None or rotating.shutting_down:
        return
    if report.action in ("none", "failed"):
        log.debug(f"refresh: {'no secret changed' if report.action == 'none' else 'failed'}")
        return
    rotating.known.update(report)
    changed = []
    if report.changed_env:
        changed.append(f"{report.names(report.changed_env)} (environment)")
    if report.changed_files:
        changed.append(f"{report.names(report.changed_files)} (file)")
    what = "; ".join(changed)
    if report.action == "signal":
        number = settings.refresh_signal
        if number:
            name = signals.signal_name(number)
            log.info(f"secrets changed: {what}; files replaced, sending {name} to the program")
            _forward(settings, state, number, log)
        else:
            log.info(f"secrets changed: {what}; files replaced (--refresh-signal 0: no signal)")
        return
    if report.action == "restart":
        log.info(f"secrets changed: {what}; restarting the program")
        rotating.successor = True
    else:
        log.info(
            f"secrets changed: {what}; stopping the program, then exiting with status "
            f"{exits.SECRETS_CHANGED} so that the container is started again"
        )
    rotating.stopping_for = report.action
    rotating.stop_deadline = time.monotonic() + settings.stop_timeout
    _forward(settings, state, signals.SIGTERM, log)


def _report_closed(settings: Settings, state: _State, rotating: "_Rotating", log: Logger) -> None:
    """End of a report pipe: the child exec'd or exited."""
    channel = rotating.channel
    assert channel is not None
    os.close(channel.report_read)
    os.close(channel.go_write)
    rotating.channel = None
    if not rotating.first and not rotating.reported:
        log.warning("refresh: the child ended without a report; the program keeps running")
    if rotating.successor and rotating.stopping_for is None and rotating.pid is None:
        # The refresh child that was told to go ahead has exec'd: the new program runs.
        rotating.successor = False
        assert settings.refresh is not None
        rotating.due = _next_refresh(settings.refresh)
        _program_started(settings, state, log)
    elif rotating.successor and rotating.stopping_for is not None:
        rotating.successor = False  # died before the old program stopped


def _stop_refresher(rotating: "_Rotating | None") -> None:
    """End a refresh child (or a successor that has not exec'd) without leaving a zombie.

    TERM first: a child replacing a secret file holds it until its staging
    file is gone (see files.write_secrets); KILL if it lingers.
    """
    if rotating is None:
        return
    rotating.successor = False
    if rotating.channel is not None:
        os.close(rotating.channel.report_read)
        os.close(rotating.channel.go_write)  # a successor waiting for the go-ahead exits
        rotating.channel = None
    if rotating.pid is None:
        return
    _kill(rotating.pid, signals.SIGTERM)
    _kill(rotating.pid, signals.SIGCONT)
    if not _exited_within(rotating.pid, _RESOLVING_GRACE):
        _kill(rotating.pid, signals.SIGKILL)
        _wait_for(rotating.pid)
    rotating.pid = None


def _on_signal(settings: Settings, state: _State, number: int, log: Logger) -> int | None:
    """Handle one received signal; a return value means: exit with it now."""
    if number == signals.SIGCHLD:
        return _reap(settings, state, log)
    rotating = state.rotating
    if rotating is not None and rotating.stopping_for is not None and state.program_running:
        # The program is being stopped, to be restarted or for us to exit.
        if number not in signals.STOP_RESOLVING:
            state.held.append(number)  # for the restarted program
            return None
        if not rotating.shutting_down:
            name = signals.signal_name(number)
            log.info(f"received {name} while the program stops; not starting it again")
        rotating.shutting_down = True
        _stop_refresher(rotating)
        _forward(settings, state, number, log)
        return None
    if rotating is not None and number == signals.SIGTERM and state.program_running:
        rotating.shutting_down = True  # stopping: no refresh, no restart from now on
        _stop_refresher(rotating)
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
        rotating = state.rotating
        if rotating is not None and pid == rotating.pid:
            rotating.pid = rotating.refresh_deadline = None
            log.debug(f"refresh child {pid} exited, status {exit_status_of(wait_status)}")
            continue
        if pid != state.child:
            log.debug(f"reaped orphan {pid}")
            continue
        state.exit_status = exit_status_of(wait_status)
        log.debug(f"child {pid} exited, status {state.exit_status}")
        if rotating and rotating.stopping_for is not None and not rotating.shutting_down:
            status = _after_stop(settings, state, rotating, log)
            if status is None:
                continue
            return status
        _stop_refresher(rotating)
        if not settings.wait_all:
            # What is left of the program's group is told to go, as dumb-init does.
            _kill(-state.child, signals.SIGTERM)
            return state.exit_status


def _after_stop(
    settings: Settings, state: _State, rotating: "_Rotating", log: Logger
) -> int | None:
    """The program we told to stop has exited: exit, or let its successor exec."""
    if not settings.wait_all:
        _kill(-state.child, signals.SIGTERM)  # its leftovers, as when a program exits
    rotating.stop_deadline = None
    if rotating.stopping_for == "exit":
        return exits.SECRETS_CHANGED
    rotating.stopping_for = None
    channel = rotating.channel
    if not rotating.successor or rotating.pid is None or channel is None:
        log.error("the program stopped, but the refresh child that was to replace it is gone")
        return exits.ERROR
    log.debug(f"the program stopped (status {state.exit_status}); starting it again")
    state.child, rotating.pid = rotating.pid, None
    state.exit_status = None
    state.program_running = False
    os.write(channel.go_write, b"g")
    return None


def _pass_terminal(state: _State, stopped: bool, log: Logger) -> None:
    """The terminal is ours while the program is stopped, and the program's again when it continues.

    With no shell to type `fg` in, a program stopped by Ctrl-Z would otherwise
    keep the terminal while it can act on nothing: the next Ctrl-C would wait
    in it for a SIGCONT that never comes. Ours, that Ctrl-C is forwarded with
    a SIGCONT after it (see `_forward`). See also `secrets_init.terminal`.
    """
    from secrets_init import terminal  # a state.terminal supervisor imported it already

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
