"""The terminal: the program gets it, as the foreground process group of a controlling terminal.

That is what makes Ctrl-C and Ctrl-Z reach the program and gives a shell run
as the program job control. What stdin is decides how the child gets it:

- The controlling terminal of a session that secrets-init leads: PID 1 under
  `docker run -it`, `kubectl run -it` or `tty: true`. The child stays in that
  session, in a process group of its own, and makes that group the
  terminal's foreground group. This is tini's way. dumb-init's is to give
  the terminal up before the fork (TIOCNOTTY) and let the child take it in a
  new session; it is not used because TIOCNOTTY sends SIGHUP and SIGCONT to
  secrets-init's own group, which would have to be told apart from a real
  SIGHUP arriving at the same moment; because secrets-init would no longer
  hear the terminal hang up; and because the program's group would be
  orphaned (its parent in another session), where the kernel discards a
  default-action SIGTSTP, so Ctrl-Z would do nothing to most programs.
  Here Ctrl-Z stops the program. With no shell to type `fg` in, the
  supervisor then takes the terminal back (`supervisor._pass_terminal`), so
  that the next Ctrl-C reaches secrets-init, which forwards it with a
  SIGCONT: a stopped program cannot run its handler otherwise. When the
  program continues, the terminal is given back to it.
- A terminal that is no session's controlling terminal: the child makes a
  new session and takes it (TIOCSCTTY).
- The controlling terminal of a session that secrets-init does not lead:
  it was started from an interactive shell, or by another init that keeps
  it in its session. The terminal stays the shell's: the child makes a new
  session, TIOCSCTTY fails with EPERM (a debug line), and the program runs
  without a controlling terminal (it still reads and writes the terminal
  through its descriptors; a shell run as the program says "no job
  control"). The shell's keys reach secrets-init, its foreground job, which
  forwards them: Ctrl-C ends the program; Ctrl-Z stops the program and then
  secrets-init itself, so the shell shows its prompt, and `fg` resumes both.
  Giving the program the terminal in the shell's session would break this:
  Ctrl-Z would stop the program alone while the shell waits for
  secrets-init, which runs on, and the terminal would hang.

PID 1 imports this module: standard library and `secrets_init.signals` only.
"""

from __future__ import annotations

import os

from secrets_init import signals

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms at start-up
if TYPE_CHECKING:
    from secrets_init.log import Logger


def led_by(supervisor: int) -> bool:
    """Whether stdin is the controlling terminal of the session that process `supervisor` leads."""
    if not os.isatty(0):
        return False
    try:
        os.tcgetpgrp(0)  # ENOTTY unless stdin is our session's controlling terminal
    except OSError:
        return False
    return os.getsid(0) == supervisor


def leave_supervisor_group() -> bool:
    """In the forked child: a group of its own; True when it stays in the terminal's session."""
    if led_by(os.getppid()):
        os.setpgid(0, 0)
        return True
    os.setsid()
    return False


def take(in_supervisor_session: bool, log: Logger) -> None:
    """In the forked child, just before exec: make the terminal the program's."""
    if not os.isatty(0):
        return
    if in_supervisor_session:
        if not give_foreground(os.getpgrp()):
            log.debug("cannot make the program the terminal's foreground group")
        return
    import fcntl
    import termios

    try:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    except OSError as error:
        # The terminal belongs to another session (a shell): see above.
        log.debug(f"stdin is a terminal but cannot become ours: {error.strerror}")


def give_foreground(group: int) -> bool:
    """Make `group` the foreground group of stdin, our controlling terminal.

    SIGTTOU is ignored meanwhile: a background group asking for the terminal
    is otherwise sent SIGTTOU (and a caller with a handler for it, as PID 1
    has, would be asked again on every retry).
    """
    previous = signals.ignore(signals.SIGTTOU)
    try:
        os.tcsetpgrp(0, group)
    except OSError:
        return False
    finally:
        signals.restore(signals.SIGTTOU, previous)
    return True


def foreground() -> int:
    """The terminal's foreground group, or -1."""
    try:
        return os.tcgetpgrp(0)
    except OSError:
        return -1
