"""`secrets-init copy DEST_DIR` from the binary: done by the launcher, which unpacks nothing.

An initContainer's root is read-only, and its only writable directory is the
volume it copies into. These runs give it exactly that: a read-only root
(whose /tmp is read-only too) and a host directory mounted as the volume. A
control run shows that the same root cannot start a program, since there is
nowhere to unpack, so a copy that unpacked would fail here. Errors and log
lines are compared with the Python CLI's own, which the launcher stands in for.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from secrets_init import config
from testing.process import ROOT, child_env
from tests.binary.conftest import BINARY, EmptyRoot, build_root

pytestmark = [pytest.mark.binary, pytest.mark.pid1]

VOLUME = "helper"  # where the root mounts the pod's shared volume
MISSING = "/no-such-volume"
ODD = '/no such "volume"\nat all'  # quotes and a line break, escaped in the log line
STAMP = re.compile(r'"time": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"')


class Pod:
    """The initContainer's view: a read-only empty root with one writable volume."""

    def __init__(self, root: EmptyRoot, volume: Path) -> None:
        self.root = root
        self.volume = volume

    def run(
        self, argv: list[str], env: dict[str, str] | None = None, *, proc: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.root.run(argv, env, read_only=True, binds=[(self.volume, VOLUME)], proc=proc)


@pytest.fixture
def pod(tmp_path: Path, empty_root: EmptyRoot) -> Pod:
    """empty_root checks for the binary, busybox and PID namespaces; this root is another."""
    volume = tmp_path / "volume"
    volume.mkdir()
    return Pod(build_root(tmp_path / "pod", dirs=[VOLUME]), volume)


def python_cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The same command through the Python CLI, on the host (where MISSING is missing too)."""
    return subprocess.run(
        [sys.executable, "-m", "secrets_init", *argv],
        env=child_env(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("proc", [True, False], ids=["proc", "no-proc"])
@pytest.mark.parametrize(
    "env", [{}, {"SECRETS_INIT_CACHE": f"/{VOLUME}"}], ids=["default", "cache-set"]
)
def test_copy_needs_no_writable_directory_but_the_destination(
    pod: Pod, proc: bool, env: dict[str, str]
) -> None:
    control = pod.run(["/secrets-init", "--", "/bin/true"], proc=proc)
    assert control.returncode == 125, control.stderr  # nowhere to unpack: it would need to

    done = pod.run(["/secrets-init", "copy", f"/{VOLUME}"], env, proc=proc)
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"secrets-init: info: copied to /{VOLUME}/secrets-init\n"
    assert done.stdout == ""
    # Only the copy: no temporary file left, no unpacked tree (not even where
    # SECRETS_INIT_CACHE points), none anywhere in the root.
    assert os.listdir(pod.volume) == ["secrets-init"]
    assert list(pod.root.path.rglob(".secrets-init-*")) == []
    copied = pod.volume / "secrets-init"
    assert copied.read_bytes() == BINARY.read_bytes()
    assert stat.S_IMODE(copied.stat().st_mode) == 0o755


def test_the_copy_runs_and_replaces_what_was_there(pod: Pod) -> None:
    """A second copy (a restarted pod) replaces the file; a symlink is replaced, not followed."""
    decoy = pod.volume / "decoy"
    decoy.write_text("keep")
    (pod.volume / "secrets-init").symlink_to("decoy")
    done = pod.run(["/secrets-init", "copy", f"/{VOLUME}/"])
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"secrets-init: info: copied to /{VOLUME}/secrets-init\n"
    copied = pod.volume / "secrets-init"
    assert not copied.is_symlink() and copied.read_bytes() == BINARY.read_bytes()
    assert decoy.read_text() == "keep"
    assert sorted(os.listdir(pod.volume)) == ["decoy", "secrets-init"]

    # The application container: its own writable /tmp, where the copy unpacks itself.
    started = pod.root.run(
        [f"/{VOLUME}/secrets-init", "--", "/bin/sh", "-c", "exit 5"],
        read_only=True,
        tmpfs=["tmp"],
        binds=[(pod.volume, VOLUME)],
    )
    assert started.returncode == 5, started.stderr


def test_log_level_and_format_apply_as_in_the_python_cli(pod: Pod) -> None:
    quiet = pod.run(["/secrets-init", "copy", f"/{VOLUME}"], {"SECRETS_INIT_LOG_LEVEL": "warning"})
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert (pod.volume / "secrets-init").read_bytes() == BINARY.read_bytes()

    logged = pod.run(["/secrets-init", "copy", f"/{VOLUME}"], {"SECRETS_INIT_LOG_FORMAT": "json"})
    assert logged.returncode == 0, logged.stderr
    [line] = logged.stderr.splitlines()
    assert STAMP.search(line), line
    record = json.loads(line)
    assert list(record) == ["time", "level", "msg"]
    assert record["level"] == "info"
    assert record["msg"] == f"copied to /{VOLUME}/secrets-init"


@pytest.mark.parametrize(
    ("argv", "env", "status"),
    [
        (["copy"], {}, 2),
        (["copy", f"/{VOLUME}", "more"], {}, 2),
        (["copy", f"/{VOLUME}"], {"SECRETS_INIT_LOG_LEVEL": "loud"}, 2),
        (["copy", f"/{VOLUME}"], {"SECRETS_INIT_LOG_FORMAT": "yaml"}, 2),
        (["copy", MISSING], {}, 1),
        (["copy", ODD], {}, 1),
        (["copy", ODD], {"SECRETS_INIT_LOG_FORMAT": "json"}, 1),
    ],
    ids=["no-dir", "two-dirs", "bad-level", "bad-format", "missing", "odd", "odd-json"],
)
def test_errors_are_the_python_clis(
    pod: Pod, argv: list[str], env: dict[str, str], status: int
) -> None:
    done = pod.run(["/secrets-init", *argv], env)
    expected = python_cli(argv, env)
    assert expected.returncode == status, expected.stderr
    assert done.returncode == status, done.stderr
    assert STAMP.sub("TIME", done.stderr) == STAMP.sub("TIME", expected.stderr)
    assert done.stdout == ""
    assert os.listdir(pod.volume) == []


def test_wrong_argument_count_is_a_usage_error(pod: Pod) -> None:
    done = pod.run(["/secrets-init", "copy"])
    assert done.returncode == 2
    first, rest = done.stderr.split("\n", 1)
    assert first == "secrets-init: copy takes exactly one argument: DEST_DIR"
    assert rest == config.USAGE


@pytest.mark.parametrize(
    ("dest", "cause"),
    [
        (MISSING, "No such file or directory"),
        ("/tmp", "Read-only file system"),
        ("/secrets-init", "Not a directory"),
    ],
)
def test_a_failed_copy_names_the_destination(pod: Pod, dest: str, cause: str) -> None:
    done = pod.run(["/secrets-init", "copy", dest])
    assert done.returncode == 1
    assert done.stderr == f"secrets-init: error: copy to {dest}: {cause}\n"
    assert os.listdir(pod.root.path / "tmp") == []


def test_a_full_volume_leaves_nothing_behind(empty_root: EmptyRoot) -> None:
    """The write fails part-way (ENOSPC); the temporary file is removed, nothing is renamed."""
    done = empty_root.run(
        ["/bin/sh", "-c", "/secrets-init copy /tmp; echo status $?; ls -A /tmp | wc -l"],
        read_only=True,
        tmpfs=["tmp:size=1m"],
    )
    assert done.stdout.split() == ["status", "1", "0"], done.stderr
    assert done.stderr == "secrets-init: error: copy to /tmp: No space left on device\n"


@pytest.mark.parametrize(
    "argv", [["--", "copy", "x"], ["--log-level", "info", "copy", "x"]], ids=["dashes", "option"]
)
def test_copy_anywhere_but_first_is_the_program_to_run(
    empty_root: EmptyRoot, argv: list[str]
) -> None:
    program = empty_root.path / "bin" / "copy"
    program.write_text('#!/bin/sh\necho "program copy $*"\n')
    program.chmod(0o755)
    done = empty_root.run(["/secrets-init", *argv])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "program copy x\n"
