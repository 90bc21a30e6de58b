"""The init half of secrets-init (secrets_init/supervisor.py), observed from outside: signals,
reaping, exit statuses.

Each behaviour runs both as a plain process and as PID 1 of a new PID namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing import process
from testing.process import child_env, run
from testing.supervised import Supervised, children_of, proc_state, wait_for
from testing.witness import Witness
from tests.conftest import Supervise

MODES = [pytest.param(False, id="process"), pytest.param(True, id="pid1", marks=pytest.mark.pid1)]
# Spawned by PID 1, or exec'd by a forked child: what the program gets must not tell them apart.
STARTS = list(process.STARTS)


@pytest.mark.parametrize("pid1", MODES)
@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize(
    ("script", "status"),
    [("exit 3", 3), ("true", 0), ("kill -TERM $$", 128 + 15), ("kill -KILL $$", 128 + 9)],
    ids=["exit-3", "exit-0", "TERM", "KILL"],
)
def test_exit_status_is_the_programs_and_death_by_signal_is_128_plus_n(
    pid1: bool, start: str, script: str, status: int
) -> None:
    env = child_env(**process.STARTS[start])
    assert run(["--", "sh", "-c", script], env=env, pid1=pid1).returncode == status


@pytest.mark.parametrize("pid1", MODES)
@pytest.mark.parametrize("start", STARTS)
def test_command_not_found_is_127_and_not_executable_is_126(
    pid1: bool, start: str, tmp_path: Path
) -> None:
    env = child_env(**process.STARTS[start])
    missing = run(["--", "no-such-command-xyz"], env=env, pid1=pid1)
    assert missing.returncode == 127
    assert missing.stderr.strip().splitlines() == [
        "secrets-init: error: no-such-command-xyz: command not found"
    ]
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    denied = run(["--", str(script)], env=env, pid1=pid1)
    assert denied.returncode == 126
    assert denied.stderr.strip().splitlines() == [
        f"secrets-init: error: {script}: cannot execute: Permission denied"
    ]


@pytest.mark.parametrize("pid1", MODES)
@pytest.mark.parametrize("start", STARTS)
def test_child_has_default_signals_empty_mask_and_own_session(pid1: bool, start: str) -> None:
    env = child_env(**process.STARTS[start])
    status = run(["--", "cat", "/proc/self/status"], env=env, pid1=pid1)
    fields = dict(line.split(":\t", 1) for line in status.stdout.splitlines() if ":\t" in line)
    assert process.signal_numbers(fields["SigIgn"]) <= process.LEFT_IGNORED[start]
    assert process.signal_numbers(fields["SigBlk"]) == set()
    program = "import os; print(os.getsid(0) == os.getpid() == os.getpgrp(), os.getppid())"
    session = run(["--", sys.executable, "-c", program], env=env, pid1=pid1)
    leader, parent = session.stdout.split()
    assert leader == "True"
    if pid1:
        assert parent == "1"


@pytest.mark.pid1
def test_is_pid_1_in_a_new_namespace() -> None:
    result = run(["--", "sh", "-c", "echo $PPID; cat /proc/1/cmdline | tr '\\0' ' '"], pid1=True)
    parent, cmdline = result.stdout.splitlines()
    assert parent == "1"
    assert "secrets_init" in cmdline or "secrets-init" in cmdline


FORWARDED = [
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
    signal.SIGALRM,
    signal.SIGPIPE,
    signal.SIGURG,
    signal.SIGCONT,
    signal.SIGABRT,
    signal.SIGRTMIN + 2,
    signal.SIGRTMAX,
]


@pytest.mark.parametrize("pid1", MODES)
def test_every_catchable_signal_is_forwarded(
    pid1: bool, tmp_path: Path, supervise: Supervise
) -> None:
    item = supervise(tmp_path, pid1=pid1)
    child = item.ready()
    for number in FORWARDED:
        item.send(number)
        item.wait_received(child, number)
    assert signal.SIGCHLD not in item.received(child)
    assert item.proc.poll() is None


@pytest.mark.parametrize("pid1", MODES)
def test_group_mode_reaches_the_whole_group_child_mode_only_the_child(
    pid1: bool, tmp_path: Path, supervise: Supervise
) -> None:
    group_dir = tmp_path / "group"
    group_dir.mkdir()
    grouped = supervise(group_dir, recorder_args=["--grandchild"], pid1=pid1)
    child, grandchild = grouped.ready("child"), grouped.ready("grandchild")
    grouped.send(signal.SIGUSR1)
    grouped.wait_received(child, signal.SIGUSR1)
    grouped.wait_received(grandchild, signal.SIGUSR1)

    child_dir = tmp_path / "child"
    child_dir.mkdir()
    single = supervise(
        child_dir,
        options=["--signal-mode", "child"],
        recorder_args=["--grandchild"],
        pid1=pid1,
    )
    child, grandchild = single.ready("child"), single.ready("grandchild")
    single.send(signal.SIGUSR1)
    single.wait_received(child, signal.SIGUSR1)
    single.send(signal.SIGUSR2)
    single.wait_received(child, signal.SIGUSR2)
    assert single.received(grandchild) == []


@pytest.mark.parametrize("pid1", MODES)
def test_rewrite_from_flag_and_environment(
    pid1: bool, tmp_path: Path, supervise: Supervise
) -> None:
    item = supervise(
        tmp_path,
        options=["--rewrite", "TERM:USR1", "--rewrite", "SIGHUP:0"],
        pid1=pid1,
        env=child_env(SECRETS_INIT_REWRITE="INT:USR2,TERM:QUIT"),
    )
    child = item.ready()
    item.send(signal.SIGHUP)  # dropped
    item.send(signal.SIGTERM)  # the flag wins over the environment: USR1
    item.wait_received(child, signal.SIGUSR1)
    item.send(signal.SIGINT)  # the flag list replaced the environment's list
    item.wait_received(child, signal.SIGINT)
    received = item.received(child)
    assert signal.SIGHUP not in received
    assert signal.SIGTERM not in received
    assert signal.SIGQUIT not in received


def test_rewrite_from_environment_alone(tmp_path: Path, supervise: Supervise) -> None:
    item = supervise(tmp_path, env=child_env(SECRETS_INIT_REWRITE="INT:USR2,TERM:QUIT"))
    child = item.ready()
    item.send(signal.SIGINT)
    item.wait_received(child, signal.SIGUSR2)
    item.send(signal.SIGTERM)
    item.wait_received(child, signal.SIGQUIT)


@pytest.mark.parametrize("pid1", MODES)
def test_term_makes_the_child_exit_and_status_is_passed_on(
    pid1: bool, tmp_path: Path, supervise: Supervise
) -> None:
    item = supervise(tmp_path, recorder_args=["--exit-on-term"], pid1=pid1)
    item.ready()
    item.send(signal.SIGTERM)
    code, _, _ = item.finish()
    assert code == 0


def zombies_with_parent(parent: int | None = None) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("State", "").startswith("Z") and (
            parent is None or int(fields["PPid"]) == parent
        ):
            found.append(int(entry.name))
    return found


ORPHANS = (
    "for i in 1 2 3 4 5 6 7 8 9 10; do (sleep 0.05 &) ; done; sleep 1; "
    "for f in /proc/[0-9]*/status; do grep -q '^State:.*Z' $f 2>/dev/null && echo zombie $f; done; "
    "echo done"
)


@pytest.mark.pid1
def test_pid1_reaps_orphans() -> None:
    result = run(["--", "sh", "-c", ORPHANS], pid1=True)
    assert result.stdout.splitlines() == ["done"], result.stdout
    assert result.returncode == 0


def test_not_pid1_becomes_subreaper_and_reaps_orphans(supervise: Supervise, tmp_path: Path) -> None:
    script = "for i in 1 2 3 4 5; do (sleep 0.2 &) ; done; sleep 2"
    item = supervise(tmp_path, command=["sh", "-c", script])
    init = item.init_pid
    wait_for(lambda: len(children_of(init)) >= 6, what="orphans adopted by secrets-init")
    time.sleep(0.6)  # the orphans (sleep 0.2) have exited by now
    assert zombies_with_parent(init) == []
    assert len(children_of(init)) == 1  # only the shell is left
    code, _, err = item.finish()
    assert code == 0, err


def start_with_leftover(
    supervise: Supervise, tmp: Path, pid1: bool, leftover: str, options: list[str]
) -> tuple[Supervised, int, Path]:
    """secrets-init running a shell that leaves `leftover` in its group, then exits 5 once
    the test writes to the returned fifo; and the leftover's pid."""
    go = tmp / "go"
    os.mkfifo(go)
    script = f"{leftover} & read line < {go}; exit 5"
    item = supervise(tmp, options=options, command=["sh", "-c", script], pid1=pid1)
    wait_for(lambda: children_of(item.init_pid), what="the shell")
    [shell] = children_of(item.init_pid)
    wait_for(lambda: children_of(shell), what="the leftover")
    [left] = children_of(shell)
    return item, left, go


def death_signal(pid: int) -> int:
    """The signal that ended zombie `pid` (0: it exited), from /proc/PID/stat's exit_code."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[49]) & 0x7F  # field 52; `fields` starts at field 3


def exiting(pid: int) -> bool:
    """Whether `pid` has begun to exit (PF_EXITING in /proc/PID/stat's flags, field 9)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return bool(int(fields[6]) & 0x4)


@pytest.mark.parametrize("pid1", MODES)
def test_leftover_group_is_terminated_when_the_child_exits(
    pid1: bool, tmp_path: Path, supervise: Supervise
) -> None:
    item, left, go = start_with_leftover(supervise, tmp_path, pid1, "sleep 30", [])
    # secrets-init is held at its own exit, so whatever ends the leftover by then is its
    # doing, not the kernel's: as PID 1, its exit kills the whole namespace.
    init = Witness.seize(item.init_pid)
    go.write_text("go\n")
    fates: list[int] = []

    def leftover_fate() -> None:
        wait_for(lambda: proc_state(left) == "Z", what="the leftover to end")
        fates.append(death_signal(left))

    seen = init.follow(at_exit=leftover_fate)
    code, _, err = item.finish()
    if not pid1:  # the witness, its parent too, has collected its status
        assert seen.exit_status is not None
        code = os.waitstatus_to_exitcode(seen.exit_status)
    assert code == 5, err
    assert seen.stopped_at_exit
    assert fates == [signal.SIGTERM]


@pytest.mark.parametrize("pid1", MODES)
def test_wait_all_waits_for_every_descendant(
    pid1: bool, tmp_path: Path, supervise: Supervise
) -> None:
    item, left, go = start_with_leftover(supervise, tmp_path, pid1, "sleep 1", ["--wait-all"])
    witness = Witness.seize(left)
    go.write_text("go\n")
    init_exiting: list[bool] = []
    seen = witness.follow(at_exit=lambda: init_exiting.append(exiting(item.init_pid)))
    code, _, err = item.finish()
    assert code == 5, err
    assert seen.signals == []  # nobody told it to go
    assert seen.exit_status is not None and os.WIFEXITED(seen.exit_status)
    assert os.WEXITSTATUS(seen.exit_status) == 0
    assert init_exiting == [False]  # secrets-init was still there when the leftover ended


def test_job_control_stops_and_resumes_child_and_itself(
    tmp_path: Path, supervise: Supervise
) -> None:
    item = supervise(tmp_path)
    child = item.ready()
    item.send(signal.SIGTSTP)
    wait_for(lambda: proc_state(child) == "T", what="child stopped")
    wait_for(lambda: proc_state(item.init_pid) == "T", what="secrets-init stopped")
    item.send(signal.SIGCONT)
    wait_for(lambda: proc_state(item.init_pid) != "T", what="secrets-init resumed")
    item.wait_received(child, signal.SIGCONT)
    assert proc_state(child) != "T"
    assert signal.SIGTSTP not in item.received(child)


@pytest.mark.pid1
def test_job_control_as_pid1_stops_and_resumes_child(tmp_path: Path, supervise: Supervise) -> None:
    item = supervise(tmp_path, pid1=True)
    child = item.ready()
    host_child = children_of(item.init_pid)[0]
    item.send(signal.SIGTTIN)
    wait_for(lambda: proc_state(host_child) == "T", what="child stopped")
    item.send(signal.SIGCONT)
    item.wait_received(child, signal.SIGCONT)
    assert proc_state(host_child) != "T"


IDLE_WATCH = 6.5  # seconds: longer than any polling interval worth having


@pytest.mark.parametrize("pid1", MODES)
def test_idle_supervisor_sleeps_in_the_kernel(
    pid1: bool, tmp_path: Path, supervise: Supervise
) -> None:
    """Not one wake-up while nothing happens, watched long enough to see a 5-second timer."""
    item = supervise(tmp_path, pid1=pid1)
    item.ready()
    tasks = Path(f"/proc/{item.init_pid}/task")

    def switches() -> int:
        """Voluntary context switches of every thread: each is one wake-up from a sleep."""
        total = 0
        for status in tasks.glob("*/status"):
            for line in status.read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
        return total

    time.sleep(0.2)
    before = switches()
    time.sleep(IDLE_WATCH)
    assert switches() == before  # no periodic wake-ups at all
    assert proc_state(item.init_pid) == "S"


@pytest.mark.parametrize("pid1", MODES)
@pytest.mark.parametrize("start", STARTS)
def test_environment_bytes_pass_through_unchanged(pid1: bool, start: str) -> None:
    env = {k.encode(): v.encode() for k, v in child_env(**process.STARTS[start]).items()}
    env[b"RAW"] = b"\xff\xfe not utf-8"
    env[b"HAS_ARN_INSIDE"] = b"prefix arn:aws:secretsmanager:us-east-1:1:secret:x"
    if start == "forked":  # an ARN that names no secret
        env[b"ROLE"] = b"arn:aws:iam::123456789012:role/app"
    program = "import os; print(sorted(os.environb.items()))"
    result = run(["--", sys.executable, "-c", program], env=env, pid1=pid1)
    assert result.returncode == 0, result.stderr
    # Python adds LC_CTYPE for itself when LANG gives no UTF-8 locale; there is one here.
    assert result.stdout == f"{sorted(env.items())}\n"


def test_terminal_becomes_the_childs_controlling_terminal() -> None:
    primary, secondary = os.openpty()
    program = "import os; print('fg', os.tcgetpgrp(0) == os.getpgrp(), flush=True)"
    try:
        proc = subprocess.Popen(
            [*process.command(), "--", sys.executable, "-c", program],
            stdin=secondary,
            stdout=subprocess.PIPE,
            env=child_env(),
            start_new_session=True,
        )
        out, _ = proc.communicate(timeout=30)
    finally:
        os.close(secondary)
        os.close(primary)
    assert proc.returncode == 0
    assert out.decode().split() == ["fg", "True"]


@pytest.mark.parametrize("pid1", MODES)
@pytest.mark.parametrize("start", STARTS)
def test_path_is_searched_as_execvp_does(pid1: bool, start: str, tmp_path: Path) -> None:
    """Entries in order; one that cannot run is passed over for a later one that can, and
    is the error reported when none can; a name with a slash is not searched for.
    (The system's directories stay on PATH: the PID 1 mode finds `unshare` there.)"""
    denied, good, empty = tmp_path / "denied", tmp_path / "good", tmp_path / "empty"
    system = "/usr/bin:/bin"
    for directory in (denied, good, empty):
        directory.mkdir()
    (denied / "prog").write_text("#!/bin/sh\necho denied\n")
    (good / "prog").write_text("#!/bin/sh\necho good\n")
    (good / "prog").chmod(0o755)
    (tmp_path / "file").write_text("")  # not a directory: passed over like a missing one
    path = f"{empty}:{tmp_path / 'file'}:{denied}:{good}:{system}"
    extra = process.STARTS[start]
    found = run(["--", "prog"], env=child_env(PATH=path, **extra), pid1=pid1)
    assert (found.returncode, found.stdout) == (0, "good\n")
    refused_path = f"{denied}:{empty}:{system}"
    refused = run(["--", "prog"], env=child_env(PATH=refused_path, **extra), pid1=pid1)
    assert refused.returncode == 126
    assert "prog: cannot execute: Permission denied" in refused.stderr
    missing = run(["--", "./prog"], env=child_env(PATH=f"{good}:{system}", **extra), pid1=pid1)
    assert missing.returncode == 127


# secrets-init's entry point in a Python whose posix_spawn cannot start a new session
# (built against a C library without POSIX_SPAWN_SETSID): it says so by NotImplementedError.
_WITHOUT_SPAWN_SETSID = """
import os, sys
def posix_spawn(*args, **kwargs):
    raise NotImplementedError("setsid not supported")
os.posix_spawn = posix_spawn
from secrets_init.cli import main
main(sys.argv[1:])
"""


def test_without_posix_spawn_setsid_the_program_is_forked_instead() -> None:
    program = "import os; print(os.getsid(0) == os.getpid(), os.getppid())"
    output = process.script_output(_WITHOUT_SPAWN_SETSID, "--", sys.executable, "-c", program)
    leader, parent = output.split()
    assert leader == "True"
    assert int(parent) != os.getpid()  # secrets-init's, not ours: it supervised
