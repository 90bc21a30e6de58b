"""The forked child (secrets_init/child.py): what it takes from the environment it was given,
and what it is while it holds credentials and values."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from testing import process
from testing.aws_proxy import AwsProxy, Fault
from testing.moto import Aws, aws_env
from testing.supervised import children_of, wait_for

# Runs argv with exactly the environment entries given, byte for byte: os.execve and
# subprocess refuse a name that is empty, which execve(2) itself allows.
EXECVE = """
import ctypes, os, sys
split = sys.argv.index("--")
entries = [os.fsencode(e) for e in sys.argv[1:split]]
argv = [os.fsencode(a) for a in sys.argv[split + 1:]]
def array(items):
    return (ctypes.c_char_p * (len(items) + 1))(*items, None)
ctypes.CDLL(None).execve(argv[0], array(argv), array(entries))
sys.exit("execve failed")
"""

# The program prints its whole environment, NUL-separated, as /proc shows it.
SHOW = [
    sys.executable,
    "-c",
    "import sys; sys.stdout.buffer.write(open('/proc/self/environ', 'rb').read())",
]


@pytest.mark.parametrize("with_reference", [False, True], ids=["no-reference", "reference"])
def test_an_entry_with_an_empty_name_does_not_stop_the_program(
    aws: Aws, proxy: AwsProxy, with_reference: bool
) -> None:
    aws.secret("unnamed", "the-value")
    env = aws_env(proxy.url, **({"DB": aws.sm_ref("unnamed")} if with_reference else {}))
    entries = [f"{name}={value}" for name, value in env.items()] + ["=weird"]
    done = subprocess.run(
        [sys.executable, "-c", EXECVE, *entries, "--", *process.command(), "--", *SHOW],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = done.stdout.split(b"\0")
    assert b"=weird" not in seen
    assert (b"DB=the-value" in seen) == with_reference
    assert b"secrets-init: warning: dropped an environment entry with an empty name" in done.stderr


def test_the_child_cannot_dump_core_while_it_resolves_and_the_program_can(
    aws: Aws, proxy: AwsProxy, tmp_path: Path
) -> None:
    """A process that is not dumpable has its /proc files owned by root, whoever runs it: so
    secrets-init runs as another user than root (nobody, when the tests run as root)."""
    as_user: list[str] = []
    uid = os.getuid()
    if uid == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to run secrets-init as a user other than root")
        uid = 65534
        as_user = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    aws.secret("dump", "dump-value")
    env = aws_env(proxy.url, DB=aws.sm_ref("dump"))

    proxy.faults.append(Fault.hang_up(times=1))  # the child waits here, the secret not yet in
    stuck = subprocess.Popen(
        [*as_user, *process.command(), "--timeout", "300", "--", "true"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: proxy.total_calls() > 0, timeout=30, what="the child's first call")
        secrets_init = stuck.pid  # setpriv execs it
        (child,) = children_of(secrets_init)
        # PID 1 is dumpable, as it was
        assert os.stat(f"/proc/{secrets_init}/environ").st_uid == uid
        assert os.stat(f"/proc/{child}/environ").st_uid == 0
    finally:
        os.killpg(stuck.pid, signal.SIGKILL)
        stuck.wait(timeout=30)

    # The program: dumpable again (exec resets it), and with the core limit it was given.
    program = (
        "import ctypes, resource; "
        "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE))"
    )
    limit = ["prlimit", "--core=12345:unlimited"]
    command = [sys.executable, "-c", program]
    direct = subprocess.run(
        [*limit, *as_user, *command], env=env, capture_output=True, text=True, timeout=60
    )
    wrapped = subprocess.run(
        [*limit, *as_user, *process.command(), "--", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrapped.returncode == 0, wrapped.stderr
    assert direct.stdout == wrapped.stdout == "1 (12345, -1)\n"
