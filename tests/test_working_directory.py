"""secrets-init leaves the directory it was started in; the program starts there.

PID 1 lives as long as the container: a working directory it kept would keep
a volume mounted there busy (`umount: target is busy`) for that whole life.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testing import process
from testing.supervised import RECORDER, children_of, wait_for

MODES = [pytest.param(False, id="process"), pytest.param(True, id="pid1", marks=pytest.mark.pid1)]


@pytest.mark.parametrize("pid1", MODES)
def test_secrets_init_moves_to_root_and_the_program_starts_where_it_was_started(
    pid1: bool, tmp_path: Path
) -> None:
    started_in = tmp_path / "volume"
    started_in.mkdir()
    argv = [*process.command(), "--", sys.executable, RECORDER, str(tmp_path)]
    proc = subprocess.Popen(
        process.as_pid1(argv) if pid1 else argv,
        cwd=started_in,
        env=process.child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for((tmp_path / "child.ready").exists, timeout=20, what="the program")
        init = children_of(proc.pid)[0] if pid1 else proc.pid
        program = children_of(init)[0]
        assert os.readlink(f"/proc/{program}/cwd") == str(started_in)
        assert os.readlink(f"/proc/{init}/cwd") == "/"
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=10)
