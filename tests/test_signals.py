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


def start(started: list[Supervised], tmp: Path, **kwargs: object) -> Supervised:
    item = Supervised(tmp, **kwargs)  # type: ignore[arg-type]
    started.append(item)
    return item


@pytest.mark.parametrize("pid1", MODES)
def test_fault_signals_sent_with_kill_are_forwarded(
    pid1: bool, tmp_path: Path, supervised: list[Supervised]
) -> None:
    item = start(supervised, tmp_path, pid1=pid1)
    child = item.ready()
    for number in FAULT_SIGNALS:
        item.send(number)
        item.wait_received(child, number)
    assert item.proc.poll() is None, "secrets-init died of a signal it should have forwarded"
    assert item.received(child) == FAULT_SIGNALS


@pytest.mark.parametrize("pid1", MODES)
def test_sys_can_be_rewritten(pid1: bool, tmp_path: Path, supervised: list[Supervised]) -> None:
    item = start(supervised, tmp_path, options=["--rewrite", "SYS:HUP"], pid1=pid1)
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
print(sorted(int(number) for number in signal.sigpending()), inbox.drain())
"""


def test_only_fault_signals_that_a_process_sent_are_passed_on() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SENDERS],
        env=process.child_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pending = [signal.SIGBUS, signal.SIGFPE, signal.SIGSEGV]
    passed_on = [signal.SIGBUS, signal.SIGSEGV]
    assert done.stdout == f"{[int(n) for n in pending]} {[int(n) for n in passed_on]}\n"


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
    item = start(supervised, tmp_path, recorder_args=["--exit-on-term"], pid1=True)
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
