"""Signals that dumb-init's test suite showed secrets-init lost, and rewrites that can never fire.

SIGSEGV and the other fault signals, sent with kill(), are forwarded like any
other signal, while a real fault in secrets-init still ends it. A program
stopped by a forwarded TSTP still acts on a TERM forwarded after it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from secrets_init import config
from testing import process
from testing.supervised import Supervised, children_of, proc_state, stopping, wait_for

MODES = [pytest.param(False, id="process"), pytest.param(True, id="pid1", marks=pytest.mark.pid1)]
STARTS = list(process.STARTS)

FAULT_SIGNALS = [
    signal.SIGILL,
    signal.SIGTRAP,
    signal.SIGBUS,
    signal.SIGFPE,
    signal.SIGSEGV,
    signal.SIGSYS,
]


@pytest.fixture
def supervised() -> Iterator[list[Supervised]]:
    with stopping(Supervised.kill) as started:
        yield started


def start_supervised(started: list[Supervised], tmp: Path, **kwargs: object) -> Supervised:
    item = Supervised(tmp, **kwargs)  # type: ignore[arg-type]
    started.append(item)
    return item


@pytest.mark.parametrize("pid1", MODES)
def test_fault_signals_sent_with_kill_are_forwarded(
    pid1: bool, tmp_path: Path, supervised: list[Supervised]
) -> None:
    item = start_supervised(supervised, tmp_path, pid1=pid1)
    child = item.ready()
    for number in FAULT_SIGNALS:
        item.send(number)
        item.wait_received(child, number)
    assert item.proc.poll() is None, "secrets-init died of a signal it should have forwarded"
    assert item.received(child) == FAULT_SIGNALS


@pytest.mark.parametrize("pid1", MODES)
def test_sys_can_be_rewritten(pid1: bool, tmp_path: Path, supervised: list[Supervised]) -> None:
    item = start_supervised(supervised, tmp_path, options=["--rewrite", "SYS:HUP"], pid1=pid1)
    child = item.ready()
    item.send(signal.SIGSYS)
    item.wait_received(child, signal.SIGHUP)
    assert item.received(child) == [signal.SIGHUP]


# A SIGSEGV from kill(), a SIGBUS from tgkill(), and a SIGFPE that the kernel
# itself sends (I/O ready on a pipe set up with F_SETSIG, si_code POLL_IN):
# all three are pending, only the first two were sent by a process.
_SENDERS = """
import fcntl, os, signal, threading
from secrets_init import signals
inbox = signals.SignalInbox()
os.kill(os.getpid(), signal.SIGSEGV)
signal.pthread_kill(threading.get_ident(), signal.SIGBUS)
read_end, write_end = os.pipe()
fcntl.fcntl(read_end, fcntl.F_SETOWN, os.getpid())
fcntl.fcntl(read_end, fcntl.F_SETSIG, signal.SIGFPE)
fcntl.fcntl(read_end, fcntl.F_SETFL, os.O_ASYNC | os.O_NONBLOCK)
os.write(write_end, b"x")
print(sorted(int(number) for number in signal.sigpending()), inbox.wait()[1])
"""


def test_only_fault_signals_that_a_process_sent_are_passed_on() -> None:
    pending = [signal.SIGBUS, signal.SIGFPE, signal.SIGSEGV]
    passed_on = [signal.SIGBUS, signal.SIGSEGV]
    expected = f"{[int(n) for n in pending]} {[int(n) for n in passed_on]}\n"
    assert process.script_output(_SENDERS, timeout=30) == expected


# Imports secrets-init as its entry point does (which sets up its signal
# handling), checks that SIGSEGV is one it now reads rather than dies of, then
# faults for real: a read at address 0.
_FAULT = """
import resource, signal
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
import secrets_init.cli
assert signal.SIGSEGV in signal.pthread_sigmask(signal.SIG_BLOCK, []), "SIGSEGV not blocked"
print("faulting", flush=True)
import ctypes
ctypes.string_at(0)
print("survived a fault", flush=True)
"""


@pytest.mark.parametrize("pid1", MODES)
def test_a_real_fault_in_secrets_init_still_ends_it(pid1: bool, tmp_path: Path) -> None:
    argv = [sys.executable, "-c", _FAULT]
    done = subprocess.run(
        process.as_pid1(argv) if pid1 else argv,
        env=process.child_env(),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        check=False,
    )
    assert done.stdout == "faulting\n", done.stderr
    # unshare passes on its child's death by a signal as 128+N
    assert done.returncode in (-signal.SIGSEGV, 128 + signal.SIGSEGV), done.stderr


@pytest.mark.pid1
def test_term_wakes_a_program_stopped_by_a_forwarded_tstp(
    tmp_path: Path, supervised: list[Supervised]
) -> None:
    item = start_supervised(supervised, tmp_path, recorder_args=["--exit-on-term"], pid1=True)
    item.ready()
    program = children_of(item.init_pid)[0]
    item.send(signal.SIGTSTP)
    wait_for(lambda: proc_state(program) == "T", what="the program stopped")
    item.send(signal.SIGTERM)
    code, _, err = item.finish()
    assert code == 0, err


@pytest.mark.parametrize(
    "spec",
    ["32:TERM", "33:TERM", "KILL:TERM", "STOP:TERM", "SIGCHLD:TERM", "TERM:32", "TERM:33"],
)
def test_rewrites_that_can_never_fire_are_refused(spec: str) -> None:
    with pytest.raises(config.UsageError, match="--rewrite"):
        config.parse(["--rewrite", spec, "app"], {})
    result = process.run(["--rewrite", spec, "--", "true"])
    assert result.returncode == 2
    assert f"--rewrite {spec}: " in result.stderr


def test_possible_rewrites_are_still_accepted() -> None:
    specs = ["SEGV:TERM", "TERM:KILL", "RTMIN:0", "HUP:34"]
    settings = config.parse([arg for spec in specs for arg in ("--rewrite", spec)] + ["app"], {})
    assert settings.rewrite == {
        signal.SIGSEGV: signal.SIGTERM,
        signal.SIGTERM: signal.SIGKILL,
        signal.SIGRTMIN: 0,
        signal.SIGHUP: 34,
    }


@pytest.mark.parametrize("pid1", MODES)
@pytest.mark.parametrize("start", STARTS)
def test_signals_ignored_when_secrets_init_started_still_reach_the_program(
    pid1: bool, start: str, tmp_path: Path, supervised: list[Supervised]
) -> None:
    """`nohup` leaves HUP ignored, a shell's `&` INT and QUIT: exec keeps them so. They are
    still queued for secrets-init (the kernel never drops a blocked signal), and forwarded."""
    ignored = [signal.SIGHUP, signal.SIGINT, signal.SIGQUIT]
    env = process.child_env(**process.STARTS[start])
    item = start_supervised(supervised, tmp_path, pid1=pid1, env=env, ignoring=ignored)
    child = item.ready()
    for number in ignored:
        item.send(number)
        item.wait_received(child, number)
    assert item.received(child) == ignored


@pytest.mark.parametrize("pid1", MODES)
@pytest.mark.parametrize("start", STARTS)
def test_the_program_does_not_inherit_what_secrets_init_was_started_ignoring(
    pid1: bool, start: str
) -> None:
    ignored = [signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGPIPE]
    env = process.child_env(**process.STARTS[start])
    done = process.run(
        ["--", "grep", "SigIgn", "/proc/self/status"], env=env, pid1=pid1, ignoring=ignored
    )
    assert done.returncode == 0, done.stderr
    assert process.signal_numbers(done.stdout.split()[1]) <= process.LEFT_IGNORED[start]


@pytest.mark.parametrize("pid1", MODES)
@pytest.mark.parametrize("start", STARTS)
def test_an_ignored_sigchld_does_not_lose_the_programs_status(pid1: bool, start: str) -> None:
    """SIGCHLD ignored would have the kernel reap the program itself: no status to pass on."""
    env = process.child_env(**process.STARTS[start])
    done = process.run(["--", "sh", "-c", "exit 3"], env=env, pid1=pid1, ignoring=[signal.SIGCHLD])
    assert (done.returncode, done.stderr) == (3, "")


# The inbox on its own: a signal queued, a descriptor readable, both seen by one wait.
# With NO_SIGNALFD, as where a seccomp filter refuses signalfd: the wait looks at the
# queue every 50 ms instead (without that, its first wait would sleep for ever).
_WAITS = """
import os, signal, sys
from secrets_init import signals
if sys.argv[1] == "NO_SIGNALFD":
    signals._open_signalfd = lambda numbers: -1
inbox = signals.SignalInbox()
read_end, write_end = os.pipe()
os.kill(os.getpid(), signal.SIGUSR1)
print(inbox.wait([read_end]))
os.write(write_end, b"x")
print(inbox.wait([read_end]))
os.kill(os.getpid(), signal.SIGUSR2)
print(inbox.wait([read_end], timeout=0))
os.read(read_end, 1)
os.kill(os.getpid(), signal.SIGTERM)
print(inbox.wait())
print(inbox.wait(timeout=0))
"""


@pytest.mark.parametrize("signalfd", ["SIGNALFD", "NO_SIGNALFD"])
def test_one_wait_sees_signals_and_descriptors(signalfd: str) -> None:
    read_end = 3
    assert process.script_output(_WAITS, signalfd, timeout=30).splitlines() == [
        f"(set(), [{int(signal.SIGUSR1)}])",
        f"({{{read_end}}}, [])",
        f"({{{read_end}}}, [{int(signal.SIGUSR2)}])",
        f"(set(), [{int(signal.SIGTERM)}])",
        "(set(), [])",
    ]


@pytest.mark.parametrize("pid1", MODES)
@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP])
def test_a_stop_signal_before_the_program_starts_means_no_program(
    pid1: bool, start: str, number: int, tmp_path: Path
) -> None:
    """Already pending when secrets-init starts (it came during the launcher's unpacking, say)."""
    marker = tmp_path / "started"
    env = process.child_env(**process.STARTS[start])
    done = process.run(["--", "touch", str(marker)], env=env, pid1=pid1, pending=[number])
    assert done.returncode == 128 + number, done.stderr
    assert not marker.exists()
    name = signal.Signals(number).name
    assert f"received {name} before starting the program; not starting it" in done.stderr


@pytest.mark.parametrize("pid1", MODES)
@pytest.mark.parametrize("start", STARTS)
def test_another_signal_before_the_program_starts_is_held_for_it(pid1: bool, start: str) -> None:
    """Delivered once the program runs: before a `sleep` has a handler, so USR1 ends it."""
    env = process.child_env(**process.STARTS[start])
    done = process.run(["--", "sleep", "30"], env=env, pid1=pid1, pending=[signal.SIGUSR1])
    assert done.returncode == 128 + signal.SIGUSR1, done.stderr
