"""Run dist/secrets-init the way a container runtime would: PID 1 in an empty root.

The root holds only the binary, a statically linked busybox (with applet
links), /proc, four /dev nodes and, unless a test says otherwise, an empty
/tmp. It runs in new PID and mount namespaces, so mounts made for a test
(a read-only root, a tmpfs) vanish with it. Nothing in the root comes from
the build machine's libraries: if the binary needed any, it would fail here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing.process import ROOT, require_pid_namespace

# SECRETS_INIT_BINARY: another build to test (scripts/build-binary with SECRETS_INIT_OUT).
BINARY = Path(os.environ.get("SECRETS_INIT_BINARY") or ROOT / "dist" / "secrets-init")
BUSYBOX = Path("/bin/busybox")
APPLETS = (
    "sh",
    "cat",
    "cp",
    "echo",
    "env",
    "grep",
    "ls",
    "sleep",
    "tr",
    "kill",
    "wc",
    "cmp",
    "true",
)
# The end of packaging/pack.py's TRAILER: the content hash and three paths.
TRAILER_TAIL = struct.Struct("<32s64s64s64s")


def require_binary() -> Path:
    """The built binary; a skip where it was not built, a failure under CI=true."""
    if BINARY.is_file() and os.access(BINARY, os.X_OK):
        return BINARY
    reason = f"{BINARY} is missing: build it with scripts/build-binary"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def bundle_hash() -> str:
    """The content hash that names the binary's cache directory."""
    with BINARY.open("rb") as handle:
        handle.seek(-TRAILER_TAIL.size, os.SEEK_END)
        fields = TRAILER_TAIL.unpack(handle.read())
    return str(fields[0].rstrip(b"\0").decode())


def cache_name(uid: int | None = None) -> str:
    """The unpacked tree's name for `uid` (default: this process's effective uid)."""
    return f".secrets-init-{os.geteuid() if uid is None else uid}-{bundle_hash()}"


@dataclass
class EmptyRoot:
    path: Path

    def run(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        *,
        read_only: bool = False,
        tmpfs: Sequence[str] = (),
        noexec_tmpfs: Sequence[str] = (),
        binds: Sequence[tuple[Path, str]] = (),
        proc: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(
                argv,
                read_only=read_only,
                tmpfs=tmpfs,
                noexec_tmpfs=noexec_tmpfs,
                binds=binds,
                proc=proc,
            ),
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        *,
        binds: Sequence[tuple[Path, str]] = (),
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(argv, binds=binds),
            env=self.env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def env(extra: dict[str, str] | None) -> dict[str, str]:
        return {"PATH": "/bin", **(extra or {})}

    def command(
        self,
        argv: Sequence[str],
        *,
        read_only: bool = False,
        tmpfs: Sequence[str] = (),
        noexec_tmpfs: Sequence[str] = (),
        binds: Sequence[tuple[Path, str]] = (),
        proc: bool = True,
    ) -> list[str]:
        """unshare runs a host shell that mounts, then execs chroot, which execs argv: PID 1."""
        steps = ["set -e"]
        if read_only:
            steps += ['/usr/bin/mount --bind "$0" "$0"', '/usr/bin/mount -o remount,bind,ro "$0"']
        for spec in tmpfs:  # "DIR" or "DIR:MOUNT-OPTIONS"
            where, _, options = spec.partition(":")
            opts = ",".join(filter(None, ["mode=1777", options]))
            steps.append(f'/usr/bin/mount -t tmpfs -o {opts} tmpfs "$0/{where}"')
        for where in noexec_tmpfs:
            steps.append(f'/usr/bin/mount -t tmpfs -o mode=1777,noexec tmpfs "$0/{where}"')
        for host, spec in binds:  # a host directory, writable even in a read-only root
            where, _, flag = spec.partition(":")  # "DIR" or "DIR:ro"
            steps.append(f'/usr/bin/mount --bind {shlex.quote(str(host))} "$0/{where}"')
            if flag == "ro":
                steps.append(f'/usr/bin/mount -o remount,bind,ro "$0/{where}"')
        if proc:
            steps.append('/usr/bin/mount -t proc proc "$0/proc"')
        steps.append('exec /usr/sbin/chroot "$0" "$@"')
        script = "\n".join(steps)
        return [
            "unshare", "--fork", "--pid", "--mount", "--kill-child",
            "/bin/sh", "-c", script, str(self.path), *argv,
        ]  # fmt: skip


def build_root(path: Path, *, tmp: bool = True, dirs: Sequence[str] = ()) -> EmptyRoot:
    path.mkdir()
    for name in ("bin", "proc", "dev", *dirs):
        (path / name).mkdir()
    if tmp:
        (path / "tmp").mkdir()
        (path / "tmp").chmod(0o1777)
    shutil.copy2(BINARY, path / "secrets-init")
    shutil.copy2(BUSYBOX, path / "bin" / "busybox")
    for applet in APPLETS:
        (path / "bin" / applet).symlink_to("busybox")
    for name, minor in (("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)):
        node = path / "dev" / name
        os.mknod(node, 0o666 | 0o020000, os.makedev(1, minor))
        node.chmod(0o666)
    return EmptyRoot(path)


@pytest.fixture
def empty_root(tmp_path: Path) -> EmptyRoot:
    require_binary()
    require_pid_namespace()
    if not BUSYBOX.is_file():
        pytest.fail("Debian's busybox-static is missing (scripts/test installs it)")
    return build_root(tmp_path / "root")
