"""Where the binary unpacks itself, and what it does when it cannot."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing.process import child_env as clean_env
from testing.process import require_pid_namespace
from tests.binary.conftest import BINARY, EmptyRoot, build_root, cache_name, require_binary

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


# --- Other users: a cache base they can write, and one they share ---------------------------
#
# These play two real users against each other (uids VICTIM and ATTACKER, with util-linux's
# setpriv) in a mount namespace whose /tmp is a fresh tmpfs and whose other candidate bases
# are read-only, so that nothing lands on this machine's own /tmp and no start can escape to
# /dev/shm, /var/tmp or /run. Files are set up from outside through /proc/PID/root.

VICTIM = 4101
ATTACKER = 4102
SHARED = "/tmp/shared"  # root's, mode 0755: holds the binary and the test's directories
REFERENCE = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"
# A reference that makes the resolving child import botocore, urllib3 and _ssl, then fail
# at once in the ordinary way: there are no credentials anywhere (HOME is /nonexistent).
AWS_FAILURE = {"X": REFERENCE, "AWS_EC2_METADATA_DISABLED": "true"}

# Waits for the victim's pid to become the unpacked bootloader (the launcher execs it in
# place: argv[0] is then the bootloader's path), and if that tree is in the shared base,
# renames it away and moves the attacker's tree into its place before the resolving child
# imports the SDKs.
SWAPPER = """
import os, sys, time
pid, base = int(sys.argv[1]), sys.argv[2]
print("ready", flush=True)
deadline = time.monotonic() + 60
while True:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv0 = handle.read().split(b"\\0")[0].decode()
    except OSError:
        sys.exit("the victim ended before its bootloader was seen")
    if "/.secrets-init-" in argv0:
        break
    if time.monotonic() > deadline:
        sys.exit("the victim's bootloader never started")
cache = os.path.dirname(argv0)
if os.path.dirname(cache) != base:
    print(f"started from {cache}: nothing to swap", flush=True)
    sys.exit()
# The bootloader finds its tree through /proc/self/exe, which follows a renamed tree, so
# the swap waits until that is done: until the resolving child has been forked.
while not open(f"/proc/{pid}/task/{pid}/children").read().strip():
    if time.monotonic() > deadline:
        sys.exit("the victim never forked its resolving child")
os.rename(cache, os.path.join(base, "moved-away"))
os.rename(os.path.join(base, "planted"), cache)
print(f"swapped {cache}", flush=True)
"""

# Waits for a tree being removed in the shared base (the launcher moves a broken cache
# aside as NAME.tmp-stale-PID, then deletes it) and puts a symlink to `target` in its place.
# It sleeps in inotify rather than polling, so that it wakes the moment the tree moves.
REDIRECTOR = """
import ctypes, os, select, struct, sys, time
base, target = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
watch = libc.inotify_init()
IN_MOVED_TO = 0x80
assert watch >= 0 and libc.inotify_add_watch(watch, base.encode(), IN_MOVED_TO) >= 0
print("ready", flush=True)
while select.select([watch], [], [], 60)[0]:
    events = os.read(watch, 65536)
    while events:
        _, _, _, size = struct.unpack_from("iIII", events)
        name = events[16 : 16 + size].rstrip(b"\\0").decode()
        events = events[16 + size :]
        if ".tmp-stale-" in name:
            time.sleep(0.005)  # into the deletion: before it, the symlink itself is deleted
            os.rename(os.path.join(base, name), os.path.join(base, "moved-away"))
            os.symlink(target, os.path.join(base, name))
            print(f"redirected {name}", flush=True)
            sys.exit()
print("no tree was removed", flush=True)
"""

# Stands in for an extension module of the attacker's: loading it runs this as the victim.
PAYLOAD = """
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void planted(void)
{
    close(open("%s", O_WRONLY | O_CREAT, 0644));
}
"""


@dataclass
class Namespace:
    """A mount namespace with a private /tmp, kept alive by a sleeping process."""

    pid: int

    def path(self, inside: str) -> Path:
        """Where `inside` (an absolute path in the namespace) is, seen from here."""
        return Path(f"/proc/{self.pid}/root{inside}")

    def command(self, argv: list[str], uid: int | None = None) -> list[str]:
        enter = ["nsenter", f"--mount=/proc/{self.pid}/ns/mnt"]
        if uid is not None:
            enter += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        return [*enter, *argv]

    def run(
        self, argv: list[str], uid: int | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(argv, uid),
            env=clean_env(**env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self, argv: list[str], uid: int, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(argv, uid),
            env=clean_env(**env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def mkdir(self, inside: str, mode: int, uid: int = 0) -> Path:
        path = self.path(inside)
        path.mkdir()
        os.chown(path, uid, uid)
        path.chmod(mode)
        return path


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    require_binary()
    require_pid_namespace()
    if shutil.which("setpriv") is None or shutil.which("nsenter") is None:
        pytest.fail("util-linux's setpriv and nsenter are missing")
    blocked = " ".join(f"mount -t tmpfs -o ro tmpfs {d};" for d in ("/dev/shm", "/var/tmp", "/run"))
    script = f"mount -t tmpfs -o mode=1777 tmpfs /tmp; {blocked} echo ready; exec sleep 600"
    holder = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-ec", script],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "ready\n"
        space = Namespace(holder.pid)
        space.mkdir(SHARED, 0o755)
        shutil.copy2(BINARY, space.path(f"{SHARED}/secrets-init"))
        yield space
    finally:
        holder.kill()
        holder.wait(timeout=10)


def unpacked_trees(directory: Path) -> list[Path]:
    return [
        path
        for path in directory.iterdir()
        if re.fullmatch(r"\.secrets-init-[-0-9a-f]+", path.name)
    ]


def add_filler(tree: Path) -> None:
    """Twenty thousand more of the victim's files, under the same names in every tree."""
    filler = tree / "filler"
    filler.mkdir(mode=0o700)
    for n in range(20000):
        (filler / str(n)).touch(mode=0o600)
    for path in [filler, *filler.iterdir()]:
        os.chown(path, VICTIM, VICTIM)


def file_count(tree: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(tree))


def test_a_base_others_can_write_is_refused_so_a_swapped_tree_never_runs(
    namespace: Namespace, tmp_path: Path
) -> None:
    """The attack of issue 12: swap the trusted tree for the attacker's once the bootloader runs.

    The victim's cache base is mode 0777 without the sticky bit (as a disk-backed emptyDir
    is). The attacker prepares a tree of their own in which every extension module is a
    library whose constructor creates a marker file, waits until the victim's bootloader
    runs from the base and has forked its resolving child, and renames the victim's tree
    away and theirs into its place; that child then loads _ssl and the rest by path (with
    the launcher before this rule, the marker appeared on every run). The launcher must
    refuse that base, so the victim runs from a tree the attacker cannot touch.
    """
    base = f"{SHARED}/base"
    marker = f"{base}/PLANTED-CODE-RAN"
    namespace.mkdir(base, 0o777)
    namespace.mkdir(f"{SHARED}/attacker", 0o700, ATTACKER)
    payload = namespace.path(f"{SHARED}/payload.so")
    source = tmp_path / "payload.c"
    source.write_text(PAYLOAD % marker)
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(payload), str(source)], check=True, timeout=60
    )
    # The attacker's tree: a real one, unpacked by the attacker, with every extension
    # module replaced by the payload.
    done = namespace.run(
        [f"{SHARED}/secrets-init", "--", "true"], ATTACKER, SECRETS_INIT_CACHE=f"{SHARED}/attacker"
    )
    assert done.returncode == 0, done.stderr
    [own] = unpacked_trees(namespace.path(f"{SHARED}/attacker"))
    planted = namespace.path(f"{base}/planted")
    shutil.copytree(own, planted, symlinks=True)
    for module in [*planted.rglob("*.cpython-*.so"), *planted.rglob("*.abi3.so")]:
        shutil.copyfile(payload, module)
    for path in [planted, *planted.rglob("*")]:
        os.lchown(path, ATTACKER, ATTACKER)
        if not path.is_symlink():  # readable by the victim
            path.chmod(0o755)

    # The victim waits in a shell (its pid is the launcher's and then the bootloader's)
    # until the attacker watches that pid.
    victim = namespace.start(
        ["sh", "-c", f"read go; exec {SHARED}/secrets-init -- true"],
        VICTIM,
        SECRETS_INIT_CACHE=base,
        **AWS_FAILURE,
    )
    swapper = namespace.start(["python3", "-c", SWAPPER, str(victim.pid), base], ATTACKER)
    try:
        assert swapper.stdout is not None and swapper.stdout.readline() == "ready\n"
        _, stderr = victim.communicate("go\n", timeout=120)
        watched, complaint = swapper.communicate(timeout=60)
    finally:
        victim.kill()
        swapper.kill()
    assert "started from" in watched or "swapped" in watched, complaint  # it saw the start
    assert not namespace.path(marker).exists(), f"the attacker's code ran as the victim: {watched}"
    assert unpacked_trees(namespace.path(base)) == []  # nothing of the victim's went there
    assert victim.returncode == 1, stderr
    assert f"error: X: {REFERENCE}: " in stderr and "needs" not in stderr


def test_refused_bases_say_why(namespace: Namespace) -> None:
    """With no other candidate left, the refusals are in the error, as for other bases."""
    namespace.mkdir(f"{SHARED}/open", 0o777)
    namespace.mkdir(f"{SHARED}/group", 0o770)
    namespace.mkdir(f"{SHARED}/theirs", 0o700, ATTACKER)
    namespace.mkdir(f"{SHARED}/open/mine", 0o700, VICTIM)
    # No fallback: /tmp is not writable for the victim, nor is the binary's directory.
    namespace.path("/tmp").chmod(0o755)
    for base, reason in [
        (f"{SHARED}/open", f"{SHARED}/open is writable by others and not sticky (mode 0777)"),
        (f"{SHARED}/group", f"{SHARED}/group is writable by others and not sticky (mode 0770)"),
        (f"{SHARED}/open/mine", f"{SHARED}/open is writable by others and not sticky"),
        (f"{SHARED}/theirs", f"{SHARED}/theirs is owned by uid {ATTACKER}, not by us or root"),
    ]:
        done = namespace.run(
            [f"{SHARED}/secrets-init", "--", "true"], VICTIM, SECRETS_INIT_CACHE=base
        )
        assert done.returncode == 125, done.stderr
        assert f"  {base}: {reason}" in done.stderr


def test_a_sticky_base_others_can_write_is_used(namespace: Namespace) -> None:
    namespace.mkdir(f"{SHARED}/sticky", 0o1777)
    done = namespace.run(
        [f"{SHARED}/secrets-init", "--", "true"], VICTIM, SECRETS_INIT_CACHE=f"{SHARED}/sticky"
    )
    assert done.returncode == 0, done.stderr
    [tree] = unpacked_trees(namespace.path(f"{SHARED}/sticky"))
    assert tree.name == cache_name(VICTIM)
    assert tree.stat().st_uid == VICTIM and stat.S_IMODE(tree.stat().st_mode) == 0o700


def test_roots_cache_in_tmp_does_not_lock_out_another_user(namespace: Namespace) -> None:
    """Each user's tree has its own name: root's in /tmp is no obstacle to anyone else's."""
    program = [f"{SHARED}/secrets-init", "--", "true"]
    assert namespace.run(program).returncode == 0
    done = namespace.run(program, VICTIM)
    assert done.returncode == 0, done.stderr
    trees = unpacked_trees(namespace.path("/tmp"))
    assert sorted(tree.stat().st_uid for tree in trees) == [0, VICTIM]


def test_files_removed_from_a_cache_are_unpacked_again(tmp_path: Path) -> None:
    """A /tmp cleaner deletes files it thinks unused, such as the _ssl module; the next start
    notices and unpacks again, so resolution fails (or succeeds) as it would have, rather
    than with "the provider needs urllib3.util.ssl_"."""
    require_binary()
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    env = clean_env(SECRETS_INIT_CACHE=str(cache), **AWS_FAILURE)
    argv = [str(BINARY), "--", "true"]
    first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert f"error: X: {REFERENCE}: " in first.stderr and "needs" not in first.stderr
    [tree] = unpacked_trees(cache)
    [ssl] = tree.rglob("_ssl.*.so")
    ssl.unlink()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr == first.stderr
    assert ssl.is_file()
    assert unpacked_trees(cache) == [tree]


def test_removing_a_broken_cache_never_follows_a_swapped_directory(namespace: Namespace) -> None:
    """While a broken tree is deleted, another user puts a symlink to the victim's own files
    in its place: nothing outside the broken tree may be deleted. (Its base is one others
    can write; the launcher may refuse it outright, and then nothing is deleted there.)"""
    base = f"{SHARED}/base"
    namespace.mkdir(base, 0o777)
    namespace.mkdir(f"{SHARED}/precious", 0o700, VICTIM)
    program = [f"{SHARED}/secrets-init", "--", "true"]
    # The victim's own tree elsewhere: the files a redirected delete would reach.
    assert namespace.run(program, VICTIM, SECRETS_INIT_CACHE=f"{SHARED}/precious").returncode == 0
    [precious] = unpacked_trees(namespace.path(f"{SHARED}/precious"))
    add_filler(precious)
    before = file_count(precious)
    # A first start with the shared base; if it unpacked there, break that tree (and make
    # its removal take long enough to be caught at it).
    assert namespace.run(program, VICTIM, SECRETS_INIT_CACHE=base).returncode == 0
    for tree in unpacked_trees(namespace.path(base)):
        (tree / "secrets-init").unlink()
        add_filler(tree)
    redirector = namespace.start(
        ["python3", "-c", REDIRECTOR, base, f"{SHARED}/precious/{precious.name}"], ATTACKER
    )
    try:
        assert redirector.stdout is not None and redirector.stdout.readline() == "ready\n"
        done = namespace.run(program, VICTIM, SECRETS_INIT_CACHE=base)
        redirector.terminate()
        seen, _ = redirector.communicate(timeout=60)
    finally:
        redirector.kill()
    assert done.returncode == 0, done.stderr
    assert file_count(precious) == before, seen
