"""Secrets as files (`?destination=`, secrets_init/files.py), written for real and observed by
the program."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from testing import process
from testing.fake_secretmanager import FakeSecretManager, gsm_env
from testing.process import child_env, run
from testing.supervised import children_of, proc_state, wait_for
from tests.conftest import Supervise

REF = "gcp:secretmanager:projects/proj-1/secrets/"

# The program describes the file its variable points to: path, mode, owner, bytes, dir mode.
DESCRIBE = """
import json, os, stat, sys
path = os.environ[sys.argv[1]]
st = os.stat(path)
print(json.dumps({
    "path": path,
    "mode": stat.S_IMODE(st.st_mode),
    "uid": st.st_uid,
    "data": open(path, "rb").read().hex(),
    "dir_mode": stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode),
}))
"""


def describe(
    env: dict[str, str], variable: str, *options: str
) -> tuple[int, dict[str, object], str]:
    result = run([*options, "--", sys.executable, "-c", DESCRIBE, variable], env=env)
    info = json.loads(result.stdout) if result.returncode == 0 else {}
    return result.returncode, info, result.stderr


def test_tempfile_is_private_complete_and_removed_afterwards(
    gsm: FakeSecretManager, tmp_path: Path
) -> None:
    payload = b"\x00binary\xff\xfe secret \n"
    gsm.add_secret("proj-1", "blob", payload)
    env = gsm_env(gsm, KEY_FILE=REF + "blob?destination=tempfile")
    code, info, err = describe(env, "KEY_FILE", "--secrets-dir", str(tmp_path))
    assert code == 0, err
    assert bytes.fromhex(str(info["data"])) == payload
    assert info["mode"] == 0o400
    assert info["dir_mode"] == 0o700
    assert info["uid"] == os.getuid()
    path = Path(str(info["path"]))
    assert path.parent.parent == tmp_path
    assert not path.exists() and not path.parent.exists()
    assert list(tmp_path.iterdir()) == []


def test_tempfile_defaults_to_dev_shm(gsm: FakeSecretManager) -> None:
    gsm.add_secret("proj-1", "s", b"v")
    code, info, err = describe(gsm_env(gsm, S=REF + "s?destination=tempfile"), "S")
    assert code == 0, err
    expected = "/dev/shm/" if os.access("/dev/shm", os.W_OK) else "/tmp/"
    assert str(info["path"]).startswith(expected)


def test_explicit_destination_is_replaced_atomically_and_stays(
    gsm: FakeSecretManager, tmp_path: Path
) -> None:
    gsm.add_secret("proj-1", "cfg", json.dumps({"password": "p@ss", "user": "u"}))
    target = tmp_path / "password"
    target.write_text("old contents")
    old_inode = target.stat().st_ino
    env = gsm_env(gsm, PW_FILE=REF + f"cfg#password?destination={target}")
    code, info, err = describe(env, "PW_FILE")
    assert code == 0, err
    assert info["path"] == str(target)
    assert target.read_bytes() == b"p@ss"
    assert target.stat().st_ino != old_inode  # renamed into place, not rewritten
    assert stat.S_IMODE(target.stat().st_mode) == 0o400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["password"]


def test_destination_in_a_missing_directory_names_variable_and_path(
    gsm: FakeSecretManager, tmp_path: Path
) -> None:
    gsm.add_secret("proj-1", "s", b"v")
    missing = tmp_path / "no" / "file"
    marker = tmp_path / "started"
    env = gsm_env(gsm, OUT=REF + f"s?destination={missing}")
    result = run(["--", "touch", str(marker)], env=env)
    assert result.returncode == 1
    assert not marker.exists()
    first = result.stderr.splitlines()[0]
    assert first.startswith("secrets-init: error: OUT: ")
    assert str(missing.parent) in first


@pytest.mark.parametrize(
    "value",
    [REF + "s?destination=relative/x", REF + "s?destination=", REF + "s?dest=/x"],
    ids=["relative", "empty", "unknown-option"],
)
def test_malformed_destinations_are_refused_before_anything_runs(value: str) -> None:
    result = run(["--", "true"], env=child_env(V=value))
    assert result.returncode == 1
    assert result.stderr.startswith(f"secrets-init: error: V: {value}: ")


def test_tempfile_is_removed_when_secrets_init_is_terminated(
    gsm: FakeSecretManager, supervise: Supervise, tmp_path: Path
) -> None:
    gsm.add_secret("proj-1", "s", b"v")
    env = gsm_env(gsm, S=REF + "s?destination=tempfile")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    options = ["--secrets-dir", str(secrets)]
    item = supervise(tmp_path, options=options, command=["sleep", "30"], env=env)
    wait_for(
        lambda: any(p.is_dir() and any(p.iterdir()) for p in secrets.iterdir()), what="secret file"
    )
    item.send(signal.SIGTERM)
    code, _, err = item.finish()
    assert code == 128 + signal.SIGTERM, err
    assert list(secrets.iterdir()) == []


def test_a_relative_secrets_dir_gives_the_program_an_absolute_path(
    gsm: FakeSecretManager, tmp_path: Path
) -> None:
    gsm.add_secret("proj-1", "s", b"v")
    (tmp_path / "rel").mkdir()
    done = subprocess.run(
        [*process.command(), "--secrets-dir", "rel", "--", "sh", "-c", 'echo "$S"; cat "$S"'],
        env=gsm_env(gsm, S=REF + "s?destination=tempfile"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    path, data = done.stdout.splitlines()
    assert os.path.isabs(path) and path.startswith(f"{tmp_path}/rel/secrets-init-")
    assert data == "v"


def test_variables_whose_file_names_collide_get_a_file_each(gsm: FakeSecretManager) -> None:
    gsm.add_secret("proj-1", "one", b"first")
    gsm.add_secret("proj-1", "two", b"second")
    env = gsm_env(
        gsm, A_B=REF + "one?destination=tempfile", **{"A B": REF + "two?destination=tempfile"}
    )
    program = 'import os; print(open(os.environ["A_B"]).read(), open(os.environ["A B"]).read())'
    result = run(["--", sys.executable, "-c", program], env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["first", "second"]


def staging_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".secrets-init-" in p.name)


def test_a_term_while_files_are_staged_leaves_no_staging_file(
    gsm: FakeSecretManager, supervise: Supervise, tmp_path: Path
) -> None:
    """The child is stopped while a staging file (0400, the secret in it) sits beside its
    destination; then secrets-init is told to stop, as `docker stop` would."""
    gsm.add_secret("proj-1", "s", b"staged-secret" * 1000)
    destinations = tmp_path / "out"
    destinations.mkdir()
    files = {f"F{i:03d}": f"{REF}s?destination={destinations}/f{i:03d}" for i in range(300)}
    item = supervise(tmp_path, command=["true"], env=gsm_env(gsm, **files))
    caught = False
    while not caught and item.proc.poll() is None:
        children = children_of(item.init_pid)
        if not children or not staging_files(destinations):
            continue
        child = children[0]
        os.kill(child, signal.SIGSTOP)
        wait_for(lambda: proc_state(child) == "T", what="the child stopped")  # noqa: B023
        caught = bool(staging_files(destinations))
        if not caught:
            os.kill(child, signal.SIGCONT)
    assert caught, "secrets-init finished before a staging file was seen"
    item.send(signal.SIGTERM)
    code, _, err = item.finish()
    assert code == 128 + signal.SIGTERM, err
    assert staging_files(destinations) == []


def test_secret_files_are_written_all_or_none(tmp_path: Path) -> None:
    """A destination that cannot be written keeps every other one as it was."""
    from secrets_init import files

    first = tmp_path / "first"
    first.write_text("old")
    secrets = [("A", str(first), b"new"), ("B", str(tmp_path / "gone" / "second"), b"new")]
    with pytest.raises(files.SecretFileError) as problem:
        files.write_secrets(None, secrets)
    assert problem.value.index == 1
    assert str(tmp_path / "gone" / "second") in str(problem.value)
    assert first.read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["first"]
