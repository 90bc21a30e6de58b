"""The terminal, as `docker run -it` hands it over: secrets-init is a session leader that owns it.

A container runtime with `-t` makes PID 1 a session leader whose controlling
terminal is a new pty. The program must end up as the foreground process
group of a controlling terminal (job control in a shell, Ctrl-C and Ctrl-Z
from the keyboard), and a program stopped from the keyboard must still end
on a later Ctrl-C or TERM. Each case runs as a plain process and as PID 1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing import process
from testing.fake_secretmanager import FakeSecretManager, gsm_env
from testing.supervised import children_of, init_pid, proc_state, stopping, wait_for

MODES = [pytest.param(False, id="process"), pytest.param(True, id="pid1", marks=pytest.mark.pid1)]

# What a runtime does with -t: a new session whose controlling terminal is
# the pty on fds 0-2, then exec (here: of secrets-init).
_SESSION_LEADER = (
    "import fcntl, os, sys, termios\n"
    "os.setsid()\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)

# The program: reports how it sees the terminal, then waits. With
# --exit-on-term it has a TERM handler, which a stopped process cannot run.
_PROGRAM = """
import json, os, signal, sys, time
path = sys.argv[1]
if "--exit-on-term" in sys.argv:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
try:
    foreground = os.tcgetpgrp(0)
except OSError:
    foreground = -1
with open("/proc/self/stat") as stat:
    fields = stat.read().rsplit(")", 1)[1].split()
facts = {"pgrp": os.getpgrp(), "foreground": foreground, "tty_nr": int(fields[4])}
with open(path + ".tmp", "w") as out:
    json.dump(facts, out)
os.rename(path + ".tmp", path)
time.sleep(60)
"""

CTRL_C = b"\x03"
CTRL_Z = b"\x1a"


class LeaderRun:
    """secrets-init as the session leader owning a new pty, maybe as PID 1."""

    def __init__(
        self,
        tmp: Path,
        pid1: bool,
        program_args: list[str] = (),  # type: ignore[assignment]
        env: dict[str, str] | None = None,
    ) -> None:
        self.facts_path = tmp / "facts.json"
        self.primary, secondary = os.openpty()
        argv = [sys.executable, "-c", _SESSION_LEADER, *process.command(), "--"]
        argv += [sys.executable, "-c", _PROGRAM, str(self.facts_path), *program_args]
        self.pid1 = pid1
        try:
            self.proc = subprocess.Popen(
                process.as_pid1(argv) if pid1 else argv,
                stdin=secondary,
                stdout=secondary,
                stderr=secondary,
                env=env or process.child_env(),
            )
        finally:
            os.close(secondary)
        os.set_blocking(self.primary, False)

    @property
    def init_pid(self) -> int:
        """Host pid of secrets-init."""
        return init_pid(self.proc, self.pid1)

    def facts(self) -> dict[str, int]:
        """What the program saw, once it has started; its host pid is added."""
        wait_for(self.facts_path.exists, timeout=20, what="the program's report")
        facts: dict[str, int] = json.loads(self.facts_path.read_text())
        facts["pid"] = children_of(self.init_pid)[0]
        return facts

    def type(self, keys: bytes) -> None:
        self.drain()
        os.write(self.primary, keys)

    def drain(self) -> str:
        """Read what the terminal shows, so that its buffer never fills."""
        shown = b""
        while True:
            try:
                chunk = os.read(self.primary, 4096)
            except (BlockingIOError, OSError):
                return shown.decode(errors="replace")
            if not chunk:
                return shown.decode(errors="replace")
            shown += chunk

    def foreground(self) -> int:
        """The terminal's foreground process group, as this test's PID namespace numbers it."""
        return os.tcgetpgrp(self.primary)

    def wait(self) -> int:
        return self.proc.wait(timeout=20)

    def close(self) -> None:
        if self.proc.poll() is None:
            for child in children_of(self.init_pid):
                try:
                    os.killpg(os.getpgid(child), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.primary)


@pytest.fixture
def leader_runs() -> Iterator[list[LeaderRun]]:
    with stopping(LeaderRun.close) as started:
        yield started


def start(
    started: list[LeaderRun],
    tmp: Path,
    pid1: bool,
    *program_args: str,
    env: dict[str, str] | None = None,
) -> LeaderRun:
    run = LeaderRun(tmp, pid1, list(program_args), env)
    started.append(run)
    return run


def assert_owns_the_terminal(facts: dict[str, int]) -> None:
    assert facts["tty_nr"] != 0, "the program's session has no controlling terminal"
    assert facts["foreground"] == facts["pgrp"], "the program is not the foreground group"


@pytest.mark.parametrize("pid1", MODES)
def test_program_is_the_foreground_group_and_ctrl_c_ends_it(
    pid1: bool, tmp_path: Path, leader_runs: list[LeaderRun]
) -> None:
    run = start(leader_runs, tmp_path, pid1)
    assert_owns_the_terminal(run.facts())
    run.type(CTRL_C)
    assert run.wait() == 128 + signal.SIGINT


@pytest.mark.parametrize("pid1", MODES)
def test_ctrl_c_while_secrets_are_fetched_is_secrets_inits(
    pid1: bool, tmp_path: Path, leader_runs: list[LeaderRun], gsm: FakeSecretManager
) -> None:
    """The program gets the terminal only once it is about to start."""
    gsm.add_secret("proj-1", "slow", b"v")
    gsm.delay = 120.0  # only the Ctrl-C can end this run
    env = gsm_env(gsm, SLOW="gcp:secretmanager:projects/proj-1/secrets/slow")
    run = start(leader_runs, tmp_path, pid1, env=env)
    wait_for(lambda: gsm.calls > 0, timeout=20, what="the fetch to begin")
    run.type(CTRL_C)
    assert run.wait() == 128 + signal.SIGINT
    assert "received SIGINT while resolving secrets; not starting the program" in run.drain()
    assert not run.facts_path.exists()


@pytest.mark.parametrize("pid1", MODES)
def test_ctrl_z_stops_the_program_and_ctrl_c_then_ends_it(
    pid1: bool, tmp_path: Path, leader_runs: list[LeaderRun]
) -> None:
    run = start(leader_runs, tmp_path, pid1)
    facts = run.facts()
    assert_owns_the_terminal(facts)
    assert run.foreground() == os.getpgid(facts["pid"])
    run.type(CTRL_Z)
    wait_for(lambda: proc_state(facts["pid"]) == "T", what="the program stopped by Ctrl-Z")
    # No shell to type `fg` in: the terminal goes back to secrets-init, so
    # that the next Ctrl-C is its to forward (with a SIGCONT), not left
    # pending in a stopped program that has a handler for it (Python has).
    wait_for(
        lambda: run.foreground() == os.getpgid(run.init_pid),
        what="the terminal back to secrets-init",
    )
    assert proc_state(run.init_pid) != "T"
    run.type(CTRL_C)
    assert run.wait() == 128 + signal.SIGINT


@pytest.mark.parametrize("pid1", MODES)
def test_term_reaches_a_program_stopped_by_ctrl_z(
    pid1: bool, tmp_path: Path, leader_runs: list[LeaderRun]
) -> None:
    """A stopped program cannot run its TERM handler: secrets-init wakes it after forwarding."""
    run = start(leader_runs, tmp_path, pid1, "--exit-on-term")
    facts = run.facts()
    run.type(CTRL_Z)
    wait_for(lambda: proc_state(facts["pid"]) == "T", what="the program stopped by Ctrl-Z")
    os.kill(run.init_pid, signal.SIGTERM)
    assert run.wait() == 0


# A job-control shell in miniature: it leads the terminal's session, runs
# secrets-init as a foreground job in a group of its own, and reports what
# waitpid(WUNTRACED) says. It continues a stopped job (`fg`) once DIR/fg exists.
_SHELL = """
import fcntl, os, signal, sys, termios, time
directory, argv = sys.argv[1], sys.argv[2:]
os.setsid()
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
for number in (signal.SIGTTOU, signal.SIGTSTP, signal.SIGINT):
    signal.signal(number, signal.SIG_IGN)
job = os.fork()
if job == 0:
    os.setpgid(0, 0)
    os.tcsetpgrp(0, os.getpgrp())
    for number in (signal.SIGTTOU, signal.SIGTSTP, signal.SIGINT):
        signal.signal(number, signal.SIG_DFL)
    os.execvp(argv[0], argv)
try:
    os.setpgid(job, job)  # as shells do, against the race with the child's own call
except PermissionError:
    pass  # the child has exec'd already, after its own setpgid
def report(event):
    with open(os.path.join(directory, "shell.log"), "a") as log:
        log.write(event + "\\n")
while True:
    os.tcsetpgrp(0, job)
    _, status = os.waitpid(job, os.WUNTRACED)
    os.tcsetpgrp(0, os.getpgrp())
    if not os.WIFSTOPPED(status):
        report(f"exit {os.waitstatus_to_exitcode(status)}")
        break
    report("stopped")
    while not os.path.exists(os.path.join(directory, "fg")):
        time.sleep(0.02)
    os.unlink(os.path.join(directory, "fg"))
    os.killpg(job, signal.SIGCONT)
"""


def test_from_an_interactive_shell_job_control_goes_through_secrets_init(tmp_path: Path) -> None:
    """The terminal stays the shell's; Ctrl-Z stops the program and secrets-init, `fg` resumes."""
    primary, secondary = os.openpty()
    facts_path = tmp_path / "facts.json"
    log = tmp_path / "shell.log"
    argv = [sys.executable, "-c", _SHELL, str(tmp_path), *process.command(), "--"]
    argv += [sys.executable, "-c", _PROGRAM, str(facts_path)]
    try:
        shell = subprocess.Popen(
            argv, stdin=secondary, stdout=secondary, stderr=secondary, env=process.child_env()
        )
    finally:
        os.close(secondary)
    try:
        wait_for(facts_path.exists, timeout=20, what="the program's report")
        facts = json.loads(facts_path.read_text())
        assert facts["tty_nr"] == 0  # the program has no controlling terminal here
        [init] = children_of(shell.pid)
        [program] = children_of(init)
        assert os.tcgetpgrp(primary) == init  # the job, secrets-init's group, has the terminal
        os.write(primary, CTRL_Z)
        wait_for(lambda: log.exists() and log.read_text() == "stopped\n", what="the job stopped")
        assert proc_state(program) == "T"
        assert os.tcgetpgrp(primary) == shell.pid
        (tmp_path / "fg").touch()
        wait_for(lambda: os.tcgetpgrp(primary) == init, what="the job in the foreground again")
        wait_for(lambda: proc_state(program) != "T", what="the program resumed")
        os.write(primary, CTRL_C)
        assert shell.wait(timeout=20) == 0
        assert log.read_text() == f"stopped\nexit {128 + signal.SIGINT}\n"
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait(timeout=10)
        os.close(primary)
