"""The one way a test runs secrets-init: a real process, or PID 1 of a new PID namespace.

The environment is built from nothing (`child_env`), so what the developer's
shell holds (credentials, PATH, HOME with its ~/.aws and gcloud directories,
SECRETS_INIT_* settings) never changes a result. What runs is the module,
or the frozen binary when pytest was given `--secrets-init-bin`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
HOME = "/nonexistent"  # no ~/.aws, no gcloud configuration: nothing found by accident
ERROR_PREFIX = "secrets-init: error: "

# The program `run(show=...)` starts: it writes the variables it was asked
# about to a file, so "the program never started" is "the file does not exist"
# and stdout stays free for what secrets-init itself prints (--check).
_SHOW = (
    "import json, os, sys\n"
    "seen = {name: os.environ.get(name) for name in sys.argv[2:]}\n"
    "open(sys.argv[1], 'w').write(json.dumps(seen))\n"
)

# The two ways secrets-init starts the program (see secrets_init/program.py),
# as environments to add: with nothing to resolve PID 1 spawns it; with a value
# that PID 1's byte test takes for a reference (an S3 ARN, which the forked
# child then finds is none), a child is forked that execs it. Tests of what
# the program is given run both.
STARTS = {"spawned": {}, "forked": {"NOT_A_SECRET": "arn:aws:s3:::a-bucket"}}
# What a program may find ignored, by how it was started: glibc's posix_spawn
# (2.36 here) leaves the two signals glibc keeps for its threads ignored in
# what it starts, as it does for system() and popen(); a C library installs
# its own handlers for them before it uses them.
LEFT_IGNORED: dict[str, set[int]] = {"spawned": {32, 33}, "forked": set()}

_binary: str | None = None


def use_binary(path: str | None) -> None:
    """Run `path` (the frozen binary) instead of the module from now on; None: the module."""
    global _binary
    _binary = path


def binary() -> str | None:
    """The frozen binary under test, or None when the module is."""
    return _binary


def command() -> list[str]:
    """The argv that starts secrets-init (before its own arguments)."""
    if _binary is not None:
        return [_binary]
    return [sys.executable, "-m", "secrets_init"]


def child_env(**extra: str) -> dict[str, str]:
    """A minimal environment with `extra` added; nothing comes from this process's."""
    env = {"PATH": PATH, "HOME": HOME, "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT)}
    env.update(extra)
    return env


@dataclass(frozen=True)
class Result:
    """One finished run of secrets-init."""

    returncode: int
    stdout: str
    stderr: str
    seen: dict[str, str | None] | None = None  # what `show` found; None: the program never ran

    @property
    def errors(self) -> list[str]:
        """secrets-init's error lines, without the `secrets-init: error: ` prefix.

        Lines end at LF alone, as secrets-init writes them: str.splitlines would
        also cut at a vertical tab or a form feed inside a variable's name.
        """
        return [
            line.removeprefix(ERROR_PREFIX)
            for line in self.stderr.split("\n")
            if line.startswith(ERROR_PREFIX)
        ]


def run(
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
    show: Iterable[str] | None = None,
    pid1: bool = False,
    ignoring: Sequence[int] = (),
    pending: Sequence[int] = (),
    timeout: float = 60,
) -> Result:
    """`secrets-init ARGS`, with `env` (default: `child_env()`), and wait for it.

    With `show` (names, or a mapping whose keys are the names), secrets-init's
    command is a program that reports those variables (after ARGS and a
    `--`); `Result.seen` holds what it saw. `ignoring`, `pending`: see `started_with`.
    Output is decoded leniently: a test about bytes compares what it printed.
    """
    with tempfile.TemporaryDirectory(prefix="secrets-init-run-") as scratch:
        seen_file = Path(scratch) / "seen.json"
        argv = [*command(), *args]
        if show is not None:
            argv += ["--", sys.executable, "-c", _SHOW, str(seen_file), *show]
        argv = started_with(argv, ignoring, pending)
        done = subprocess.run(
            as_pid1(argv) if pid1 else argv,
            env=child_env() if env is None else env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        seen = json.loads(seen_file.read_text()) if seen_file.exists() else None
    return Result(
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
        seen,
    )


# Sets the signals in argv[1] to SIG_IGN, makes those in argv[2] pending (blocked,
# then sent to itself), then execs the rest; each a comma-separated list of numbers.
_STARTED_WITH = (
    "import os, signal, sys\n"
    "numbers = [[int(n) for n in listed.split(',') if n] for listed in sys.argv[1:3]]\n"
    "for number in numbers[0]:\n"
    "    signal.signal(number, signal.SIG_IGN)\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, numbers[1])\n"
    "for number in numbers[1]:\n"
    "    os.kill(os.getpid(), number)\n"
    "os.execvp(sys.argv[3], sys.argv[3:])\n"
)


def started_with(
    argv: Sequence[str], ignoring: Sequence[int] = (), pending: Sequence[int] = ()
) -> list[str]:
    """`argv` started in the same process (the same pid) after some signals were set up.

    `ignoring`: ignored, as `nohup` (HUP) or a shell's `&` (INT, QUIT) leave them; exec
    keeps an ignored signal ignored. `pending`: sent and waiting, as a signal that arrives
    before secrets-init has started; exec keeps a pending signal pending (and blocked).
    """
    if not ignoring and not pending:
        return list(argv)
    lists = [",".join(str(int(number)) for number in group) for group in (ignoring, pending)]
    return [sys.executable, "-c", _STARTED_WITH, *lists, *argv]


def signal_numbers(mask: str) -> set[int]:
    """The signals in a mask as /proc/PID/status shows it (SigIgn, SigBlk): hexadecimal, bit N-1
    for signal N."""
    bits = int(mask, 16)
    return {bit + 1 for bit in range(64) if bits >> bit & 1}


def script_output(script: str, *args: str, timeout: float = 60) -> str:
    """What a Python `script` printed, run with `child_env()` (so it can import secrets_init,
    and replace part of it first); it must succeed."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


_unshare_works: bool | None = None


def unshare_available() -> bool:
    """Whether this machine lets us start a new PID namespace (root or user namespaces)."""
    global _unshare_works
    if _unshare_works is None:
        if shutil.which("unshare", path=PATH) is None:
            _unshare_works = False
        else:
            probe = subprocess.run(
                ["unshare", "--fork", "--pid", "--mount-proc", "sh", "-c", "echo $$"],
                env=child_env(),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            _unshare_works = probe.returncode == 0 and probe.stdout.strip() == "1"
    return _unshare_works


def require_pid_namespace() -> None:
    """Skip where unshare is not permitted, but never under CI=true: CI must exercise PID 1."""
    if unshare_available():
        return
    import pytest  # here, so bench/ and the demo can use this module without pytest

    reason = (
        "unshare --fork --pid --mount-proc is not permitted here (needs root or user namespaces)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def as_pid1(argv: Sequence[str]) -> list[str]:
    """`argv` as PID 1 of a new PID namespace, with its own /proc; killed with its parent."""
    require_pid_namespace()
    return ["unshare", "--fork", "--pid", "--mount-proc", "--kill-child", *argv]
