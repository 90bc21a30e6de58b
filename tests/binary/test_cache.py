"""Where the binary unpacks itself, and what it does when it cannot."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.binary.conftest import BINARY, EmptyRoot, build_root, cache_name, require_binary
from tests.conftest import clean_env

pytestmark = [pytest.mark.binary, pytest.mark.pid1]

WHERE = ["/secrets-init", "--", "/bin/sh", "-c", 'tr "\\0" "\\n" < /proc/1/cmdline | head -n 1']


def unpacked_at(done: subprocess.CompletedProcess[str]) -> str:
    """The directory PID 1 runs from, as the program sees it."""
    assert done.returncode == 0, done.stderr
    return os.path.dirname(done.stdout.strip())


def test_without_tmp_it_unpacks_next_to_itself(tmp_path: Path, empty_root: EmptyRoot) -> None:
    root = build_root(tmp_path / "no-tmp", tmp=False)
    assert unpacked_at(root.run(WHERE)) == f"/{cache_name()}"
    assert (root.path / cache_name()).is_dir()


def test_read_only_root_with_a_tmpfs(empty_root: EmptyRoot) -> None:
    done = empty_root.run(WHERE, read_only=True, tmpfs=["tmp"])
    assert unpacked_at(done) == f"/tmp/{cache_name()}"
    assert list(empty_root.path.rglob(".secrets-init-*")) == []  # it went to the tmpfs


def test_noexec_mounts_are_skipped(tmp_path: Path, empty_root: EmptyRoot) -> None:
    """Docker mounts /dev/shm noexec; an unpacked tree there could not run."""
    root = build_root(tmp_path / "noexec", dirs=["run"])
    done = root.run(WHERE, read_only=True, noexec_tmpfs=["tmp"], tmpfs=["run"])
    assert unpacked_at(done) == f"/run/{cache_name()}"


def test_a_full_tmp_is_left_clean_and_the_next_place_is_used(empty_root: EmptyRoot) -> None:
    argv = [*WHERE[:-1], WHERE[-1] + "; ls -a /tmp | wc -l"]
    done = empty_root.run(argv, tmpfs=["tmp:size=8m"])
    assert done.returncode == 0, done.stderr
    where, entries = done.stdout.split()
    assert os.path.dirname(where) == f"/{cache_name()}"
    assert entries == "2"  # only . and ..: the half-unpacked copy was removed


def test_nothing_writable_says_so(empty_root: EmptyRoot) -> None:
    done = empty_root.run(["/secrets-init", "--", "/bin/true"], read_only=True)
    assert done.returncode == 125
    assert "no writable directory that allows executables" in done.stderr
    assert "/tmp: read-only file system" in done.stderr
    assert "SECRETS_INIT_CACHE" in done.stderr


def test_secrets_init_cache_comes_first(tmp_path: Path, empty_root: EmptyRoot) -> None:
    root = build_root(tmp_path / "chosen", dirs=["cache"])
    done = root.run(WHERE, {"SECRETS_INIT_CACHE": "/cache"})
    assert unpacked_at(done) == f"/cache/{cache_name()}"


@pytest.mark.parametrize("how", ["foreign-owner", "group-writable", "symlink"])
def test_a_cache_dir_it_did_not_make_is_not_trusted(
    tmp_path: Path, empty_root: EmptyRoot, how: str
) -> None:
    planted = empty_root.path / "tmp" / cache_name()
    if how == "symlink":
        (empty_root.path / "elsewhere").mkdir(mode=0o700)
        planted.symlink_to("/elsewhere")
    else:
        planted.mkdir(mode=0o700)
        (planted / "secrets-init").write_text("#!/bin/sh\necho planted\n")
        if how == "foreign-owner":
            os.chown(planted, 4242, 4242)
        else:
            planted.chmod(0o770)
    done = empty_root.run(WHERE)
    # It goes on to the next candidate (here: the directory it lives in).
    assert unpacked_at(done) == f"/{cache_name()}"


def test_a_second_start_reuses_the_cache(tmp_path: Path) -> None:
    require_binary()
    cache = tmp_path / "cache"
    cache.mkdir()
    env = clean_env(SECRETS_INIT_CACHE=str(cache))
    for _ in range(2):
        done = subprocess.run(
            [str(BINARY), "--", "true"], env=env, capture_output=True, check=False
        )
        assert done.returncode == 0, done.stderr
    unpacked = cache / cache_name()
    marker = unpacked / "marker"
    marker.write_text("kept")
    done = subprocess.run([str(BINARY), "--", "true"], env=env, capture_output=True, check=False)
    assert done.returncode == 0
    assert marker.read_text() == "kept"  # not unpacked again
    assert sorted(p.name for p in cache.iterdir()) == [cache_name()]


def test_concurrent_first_starts_leave_one_copy(tmp_path: Path) -> None:
    require_binary()
    cache = tmp_path / "cache"
    cache.mkdir()
    env = clean_env(SECRETS_INIT_CACHE=str(cache))
    starts = [
        subprocess.Popen([str(BINARY), "--", "true"], env=env, stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    for start in starts:
        _, stderr = start.communicate(timeout=60)
        assert start.returncode == 0, stderr
    assert sorted(p.name for p in cache.iterdir()) == [cache_name()]


def test_an_incomplete_cache_is_unpacked_again(tmp_path: Path) -> None:
    """A /tmp cleaner may delete files inside it; the bootloader's absence is noticed."""
    require_binary()
    cache = tmp_path / "cache"
    cache.mkdir()
    env = clean_env(SECRETS_INIT_CACHE=str(cache))
    assert subprocess.run([str(BINARY), "--", "true"], env=env, check=False).returncode == 0
    (cache / cache_name() / "secrets-init").unlink()
    assert subprocess.run([str(BINARY), "--", "true"], env=env, check=False).returncode == 0
    assert sorted(p.name for p in cache.iterdir()) == [cache_name()]


@pytest.mark.parametrize("original", [None, "/opt/lib:/usr/local/lib"])
def test_the_program_gets_the_users_ld_library_path_back(
    tmp_path: Path, original: str | None
) -> None:
    require_binary()
    env = clean_env(SECRETS_INIT_CACHE=str(tmp_path))
    if original is not None:
        env["LD_LIBRARY_PATH"] = original
    done = subprocess.run(
        [str(BINARY), "--", "env"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    seen = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert seen.get("LD_LIBRARY_PATH") == original
    assert [k for k in seen if k.startswith(("_PYI", "_MEIPASS", "_SECRETS_INIT"))] == []


def test_an_abandoned_unpack_is_cleaned_up(tmp_path: Path) -> None:
    """A start killed while unpacking leaves a .tmp directory; the next unpack removes it."""
    require_binary()
    cache = tmp_path / "cache"
    abandoned = cache / f"{cache_name()}.tmp-99999-1"
    (abandoned / "_internal").mkdir(parents=True)
    os.utime(abandoned, (1, 1))
    env = clean_env(SECRETS_INIT_CACHE=str(cache))
    assert subprocess.run([str(BINARY), "--", "true"], env=env, check=False).returncode == 0
    assert sorted(p.name for p in cache.iterdir()) == [cache_name()]


def test_the_program_keeps_the_users_umask(tmp_path: Path) -> None:
    require_binary()
    done = subprocess.run(
        ["sh", "-c", f'umask 0027; exec "{BINARY}" -- sh -c umask'],
        env=clean_env(SECRETS_INIT_CACHE=str(tmp_path)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0027"
