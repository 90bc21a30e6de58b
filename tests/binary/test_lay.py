"""`secrets-init lay DIR [FAMILY...]`: the tree laid once per pod, then run in place, read-only.

An initContainer lays the tree into the pod's shared volume; every
application container runs DIR/secrets-init (the launcher without its
payload) from that volume mounted read-only, and unpacks nothing. Here the
volume is a host directory of mode 1777 (a memory-backed emptyDir is a
sticky tmpfs), bound into empty roots. Faults: a lay that cannot finish
(a full volume, a kill mid-way) leaves nothing that would run, and the
launcher says what is wrong with a tree instead of running it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from secrets_init import config
from testing.moto import DUMMY_CREDENTIALS, Aws
from testing.process import ROOT, child_env
from tests.binary.conftest import EmptyRoot, bundle_hash

pytestmark = [pytest.mark.binary, pytest.mark.pid1]

VOLUME = "pod"  # where the roots mount the shared volume
SHOW = ["/bin/sh", "-c", 'echo "[$FIRST]"; tr "\\0" "\\n" < /proc/1/cmdline | head -n 1']


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    shared = tmp_path / "volume"
    shared.mkdir()
    shared.chmod(0o1777)
    return shared


@pytest.fixture
def root(tmp_path: Path, empty_root: EmptyRoot) -> EmptyRoot:
    (empty_root.path / VOLUME).mkdir()
    (empty_root.path / "elsewhere").mkdir()
    return empty_root


def tree_name() -> str:
    return f".secrets-init-{bundle_hash()}"


def lay(root: EmptyRoot, volume: Path, *families: str) -> str:
    done = root.run(
        ["/secrets-init", "lay", f"/{VOLUME}", *families], read_only=True, binds=[(volume, VOLUME)]
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def run_laid(
    root: EmptyRoot, volume: Path, env: dict[str, str], where: str = VOLUME
) -> tuple[int, str, str]:
    """The application container: read-only root, the volume read-only, nothing writable."""
    done = root.run(
        [f"/{where}/secrets-init", "--", *SHOW],
        env,
        read_only=True,
        binds=[(volume, f"{where}:ro")],
    )
    return done.returncode, done.stdout, done.stderr


def test_a_laid_tree_runs_in_place_as_pid_1(root: EmptyRoot, volume: Path, aws: Aws) -> None:
    said = lay(root, volume, "aws")
    assert said == (
        f"secrets-init: info: laid core+tls+aws in /{VOLUME}/{tree_name()}; "
        f"run /{VOLUME}/secrets-init\n"
    )
    assert sorted(p.name for p in volume.iterdir()) == [tree_name(), "secrets-init"]
    launcher = volume / "secrets-init"
    assert launcher.stat().st_size < 1_000_000  # the launcher, without the payload
    aws.parameter("flag", "on")
    env = {
        "AWS_ENDPOINT_URL": aws.url,
        "AWS_EC2_METADATA_DISABLED": "true",
        **DUMMY_CREDENTIALS,
        "FIRST": aws.ssm_ref("flag"),
    }
    status, out, err = run_laid(root, volume, env)
    assert status == 0, err
    assert out.splitlines() == ["[on]", f"/{VOLUME}/{tree_name()}/secrets-init"]


def test_laying_again_keeps_a_complete_tree(root: EmptyRoot, volume: Path) -> None:
    lay(root, volume, "aws")
    marker = volume / tree_name() / "marker"
    marker.write_text("kept")
    assert lay(root, volume, "aws").startswith("secrets-init: info: kept core+tls+aws in ")
    assert marker.read_text() == "kept"
    # Another family: laid anew, with both.
    assert lay(root, volume, "aws", "google").startswith(
        "secrets-init: info: laid core+tls+aws+google in "
    )
    assert not marker.exists()


def test_a_family_that_was_not_laid_is_named(root: EmptyRoot, volume: Path) -> None:
    lay(root, volume, "none")
    status, out, err = run_laid(root, volume, {"FIRST": "gcp:secretmanager:projects/p/secrets/s"})
    assert status == 125 and out == ""
    assert "lacks tls+google (not laid, or incomplete)" in err
    assert f"`secrets-init lay /{VOLUME} google`" in err
    status, out, err = run_laid(root, volume, {"FIRST": "plain"})
    assert status == 0, err
    assert out.startswith("[plain]\n")


def test_a_half_written_file_is_never_run(root: EmptyRoot, volume: Path) -> None:
    lay(root, volume)
    library = volume / tree_name() / "_internal" / "libpython3.11.so.1.0"
    library.write_bytes(library.read_bytes()[:4096])  # a file cut short, as a full volume leaves it
    status, out, err = run_laid(root, volume, {"FIRST": "plain"})
    assert status == 125 and out == ""
    assert f"/{VOLUME}/{tree_name()} is incomplete (a lay stopped mid-way, or files removed)" in err
    assert f"run `secrets-init lay /{VOLUME}` again" in err
    lay(root, volume)  # lays it again
    status, _, err = run_laid(root, volume, {"FIRST": "plain"})
    assert status == 0, err


def test_a_part_without_its_manifest_is_not_run(root: EmptyRoot, volume: Path) -> None:
    """A part's manifest is the last file a lay writes: without it, the part is unfinished."""
    lay(root, volume, "aws")
    (volume / tree_name() / "secrets-init.aws.manifest").unlink()
    status, _, err = run_laid(root, volume, {"FIRST": "arn:aws:ssm:us-east-1:1:parameter/x"})
    assert status == 125
    assert "lacks aws (not laid, or incomplete)" in err


def test_a_full_volume_leaves_nothing_that_would_run(root: EmptyRoot) -> None:
    script = f"/secrets-init lay /{VOLUME}; echo status=$?; ls -A /{VOLUME}"
    done = root.run(["/bin/sh", "-c", script], read_only=True, tmpfs=[f"{VOLUME}:size=8m"])
    assert done.stderr == (
        f"secrets-init: error: lay in /{VOLUME}: cannot unpack: No space left on device\n"
    )
    assert done.stdout == "status=1\n"  # and the volume is empty: no tree, no launcher


def test_a_lay_killed_mid_way_is_never_run_and_the_next_lay_recovers(
    root: EmptyRoot, volume: Path
) -> None:
    """The initContainer killed while it lays (after an earlier lay had finished)."""
    lay(root, volume, "none")
    script = (
        f"/secrets-init lay /{VOLUME} & pid=$!\n"
        f"until ls -d /{VOLUME}/.secrets-init-*.tmp-* >/dev/null 2>&1; do :; done\n"
        "kill -KILL $pid\n"
    )
    done = root.run(["/bin/sh", "-c", script], read_only=True, binds=[(volume, VOLUME)])
    assert done.returncode == 0, done.stderr
    # The earlier tree was put aside before the new one was started; the new one is not in place.
    assert not (volume / tree_name()).exists()
    assert (volume / "secrets-init").exists()
    status, out, err = run_laid(root, volume, {"FIRST": "plain"})
    assert status == 125 and out == ""
    assert f"/{VOLUME}/{tree_name()} is missing: the initContainer's " in err
    lay(root, volume)
    status, _, err = run_laid(root, volume, {"FIRST": "plain"})
    assert status == 0, err


def test_two_containers_start_at_once_from_one_volume(root: EmptyRoot, volume: Path) -> None:
    lay(root, volume, "none")
    argv = [f"/{VOLUME}/secrets-init", "--", *SHOW]
    starts = [
        root.start(argv, {"FIRST": f"c{i}"}, binds=[(volume, f"{VOLUME}:ro")]) for i in range(2)
    ]
    for i, start in enumerate(starts):
        out, err = start.communicate(timeout=60)
        assert start.returncode == 0, err
        assert out.startswith(f"[c{i}]\n")


def test_mounted_at_another_path_it_says_so(root: EmptyRoot, volume: Path) -> None:
    lay(root, volume, "none")
    status, _, err = run_laid(root, volume, {"FIRST": "plain"}, where="elsewhere")
    assert status == 125
    assert "was laid at another path: mount its volume at the same path" in err


def test_the_laid_launcher_neither_copies_nor_lays(root: EmptyRoot, volume: Path) -> None:
    lay(root, volume, "none")
    for command in ("copy", "lay"):
        done = root.run([f"/{VOLUME}/secrets-init", command, "/tmp"], binds=[(volume, VOLUME)])
        assert done.returncode == 125
        assert re.search(
            f"left beside its tree; run {command} from the secrets-init image", done.stderr
        )


def test_an_unknown_family_is_a_usage_error(root: EmptyRoot, volume: Path) -> None:
    done = root.run(["/secrets-init", "lay", f"/{VOLUME}", "azure"], binds=[(volume, VOLUME)])
    assert done.returncode == 2
    assert done.stderr.startswith(
        "secrets-init: lay: 'azure' is not one of aws, google, all, none\nusage: "
    )
    assert list(volume.iterdir()) == []


def test_the_python_cli_says_lay_needs_the_binary() -> None:
    """Only the single binary has a tree to lay; the module says so, with the usage."""
    done = subprocess.run(
        [sys.executable, "-m", "secrets_init", "lay", "/nowhere", "aws"],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        "secrets-init: lay needs the single-file binary (scripts/build-binary)\n" + config.USAGE
    )


@pytest.mark.parametrize("how", ["foreign-owner", "group-writable"])
def test_a_tree_another_user_could_change_is_not_run(
    root: EmptyRoot, volume: Path, how: str
) -> None:
    """Trusted: owned by the launcher's owner (who laid it) or by us, writable by no other."""
    lay(root, volume, "none")
    tree = volume / tree_name()
    if how == "foreign-owner":
        os.chown(tree, 4242, 4242)
    else:
        tree.chmod(0o775)
    status, out, err = run_laid(root, volume, {"FIRST": "plain"})
    assert status == 125 and out == ""
    assert "the tree beside /pod/secrets-init is not trusted" in err
    expected = "owned by uid 4242, not by us" if how == "foreign-owner" else "writable by others"
    assert expected in err
