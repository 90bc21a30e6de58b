"""dist/secrets-init as PID 1 of an empty root: the init behaviours, with nothing to lean on."""

from __future__ import annotations

import os
import signal

import pytest

from testing.supervised import children_of, proc_state, wait_for
from tests.binary.conftest import BINARY, EmptyRoot, cache_name

pytestmark = [pytest.mark.binary, pytest.mark.pid1]

# A busybox shell that records the signals it traps; TERM ends it with status 7.
TRAPPER = """
log=/tmp/signals
for s in HUP USR1 USR2 WINCH QUIT INT; do trap "echo $s >> $log" $s; done
trap 'echo TERM >> /tmp/signals; exit 7' TERM
echo ready >> $log
while true; do sleep 0.05; done
"""


def proc_lines(root: EmptyRoot, argv: list[str]) -> str:
    done = root.run(argv)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_it_is_pid_1_and_the_program_gets_a_clean_environment(empty_root: EmptyRoot) -> None:
    out = proc_lines(
        empty_root,
        [
            "/secrets-init", "--", "/bin/sh", "-c",
            'echo "me $$"; echo "pid1 $(tr "\\0" " " < /proc/1/cmdline)"; env',
        ],
    )  # fmt: skip
    lines = out.splitlines()
    me = next(line for line in lines if line.startswith("me "))
    pid1 = next(line for line in lines if line.startswith("pid1 "))
    assert me != "me 1"
    # PID 1 is the unpacked bootloader running the supervisor: no launcher process left over.
    assert pid1.split()[1] == f"/tmp/{cache_name()}/secrets-init"
    environment = [line for line in lines if "=" in line]
    leaked = [
        line
        for line in environment
        if line.startswith(("_PYI", "_MEIPASS", "_SECRETS_INIT", "LD_"))
    ]
    assert leaked == []
    assert "PATH=/bin" in environment


def test_signals_reach_the_program(empty_root: EmptyRoot) -> None:
    log = empty_root.path / "tmp" / "signals"
    process = empty_root.start(["/secrets-init", "--", "/bin/sh", "-c", TRAPPER])
    try:
        wait_for(lambda: log.exists() and "ready" in log.read_text(), what="the trap script")
        wait_for(lambda: children_of(process.pid) != [], what="PID 1 of the namespace")
        pid1 = children_of(process.pid)[0]
        wait_for(lambda: children_of(pid1) != [], what="the program")
        program = children_of(pid1)[0]
        for name in ("HUP", "USR1", "USR2", "WINCH", "QUIT", "INT"):
            os.kill(pid1, getattr(signal, f"SIG{name}"))
            wait_for(lambda n=name: n in log.read_text().split(), what=f"SIG{name} at the program")
        # TSTP stops the program (as SIGSTOP: its orphaned group would ignore TSTP),
        # CONT resumes it.
        os.kill(pid1, signal.SIGTSTP)
        wait_for(lambda: proc_state(program) == "T", what="the program to stop")
        assert proc_state(pid1) != "T"  # PID 1 itself never stops
        os.kill(pid1, signal.SIGCONT)
        wait_for(lambda: proc_state(program) != "T", what="the program to resume")
        os.kill(pid1, signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 7, stderr
    assert log.read_text().split() == [
        "ready",
        "HUP",
        "USR1",
        "USR2",
        "WINCH",
        "QUIT",
        "INT",
        "TERM",
    ]


def test_exit_statuses(empty_root: EmptyRoot) -> None:
    def status(*argv: str) -> int:
        return empty_root.run(["/secrets-init", "--", *argv]).returncode

    assert status("/bin/sh", "-c", "exit 3") == 3
    assert status("/bin/true") == 0
    assert status("/bin/sh", "-c", "kill -TERM $$") == 143
    assert status("/bin/sh", "-c", "kill -KILL $$") == 137
    assert status("/no/such/program") == 127
    assert status("/tmp") == 126


def test_orphans_are_adopted_and_reaped(empty_root: EmptyRoot) -> None:
    script = (
        "(sleep 0.4 &); (sleep 0.4 &); (sleep 0.4 &); sleep 0.1\n"
        "for s in /proc/[0-9]*/status; do grep -E '^(Name|PPid)' $s | tr '\\n' ' '; echo; done\n"
        "sleep 1\n"
        "echo zombies $(grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l)\n"
    )
    out = proc_lines(empty_root, ["/secrets-init", "--", "/bin/sh", "-c", script])
    sleepers = [line for line in out.splitlines() if line.startswith("Name:") and "sleep" in line]
    assert len(sleepers) >= 3
    # The orphaned sleeps were re-parented to PID 1 (the supervisor), and reaped by it.
    adopted = [fields for fields in (line.split() for line in sleepers) if fields[-1] == "1"]
    assert len(adopted) == 3, out
    assert out.splitlines()[-1] == "zombies 0"


def test_copy_writes_the_file_the_user_ran(empty_root: EmptyRoot) -> None:
    (empty_root.path / "tmp" / "out").mkdir()  # an initContainer's volume exists
    done = empty_root.run(["/secrets-init", "copy", "/tmp/out"])
    assert done.returncode == 0, done.stderr
    copied = empty_root.path / "tmp" / "out" / "secrets-init"
    assert copied.read_bytes() == BINARY.read_bytes()
    assert copied.stat().st_mode & 0o777 == 0o755
    again = empty_root.run(["/tmp/out/secrets-init", "--", "/bin/sh", "-c", "exit 5"])
    assert again.returncode == 5, again.stderr


def test_version_names_the_bundled_sdks(empty_root: EmptyRoot) -> None:
    done = empty_root.run(["/secrets-init", "--version"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("secrets-init ")
    for package in ("boto3", "botocore", "google-auth", "urllib3"):
        line = next(line for line in lines if line.split()[0] == package)
        assert line.split()[1][0].isdigit(), line


def is_secrets_init(pids: list[int]) -> bool:
    """True once the namespace's PID 1 is secrets-init (launcher or bootloader), not sh."""
    try:
        return (
            bool(pids) and os.path.basename(os.readlink(f"/proc/{pids[0]}/exe")) == "secrets-init"
        )
    except OSError:
        return False


def test_a_term_sent_as_soon_as_it_starts_is_not_lost(empty_root: EmptyRoot) -> None:
    """Sent while the launcher unpacks or Python starts, a TERM must still end the run."""
    process = empty_root.start(["/secrets-init", "--", "/bin/sh", "-c", TRAPPER])
    try:
        wait_for(lambda: is_secrets_init(children_of(process.pid)), what="secrets-init as PID 1")
        os.kill(children_of(process.pid)[0], signal.SIGTERM)
        process.communicate(timeout=20)
    finally:
        process.kill()
        process.wait()
    # Either the TERM arrived while still starting (128+15) or the trap saw it (7).
    assert process.returncode in (143, 7)


def test_it_finds_itself_from_a_relative_path(empty_root: EmptyRoot) -> None:
    (empty_root.path / "opt").mkdir()
    os.rename(empty_root.path / "secrets-init", empty_root.path / "opt" / "secrets-init")
    done = empty_root.run(
        ["/bin/sh", "-c", "cd /opt && exec ./secrets-init -- /bin/sh -c 'exit 4'"]
    )
    assert done.returncode == 4, done.stderr


def test_it_runs_without_proc(empty_root: EmptyRoot) -> None:
    done = empty_root.run(
        ["/secrets-init", "--", "/bin/sh", "-c", "ls /proc | wc -l; exit 4"], proc=False
    )
    assert done.returncode == 4, done.stderr
    assert done.stdout.split() == ["0"]
