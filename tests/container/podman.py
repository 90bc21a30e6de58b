"""podman as these tests drive it: a private store, and the flags a sandbox needs.

There is no Docker engine on CI's machine, but Debian's podman and runc run
containers as root there with a few settings, all kept in this one place:

- storage in a temporary directory with the `vfs` driver, which needs no
  overlay mounts; the tests never touch (or depend on) the machine's store,
  and removing the directory removes every image and container they made;
- `--cgroup-manager cgroupfs` and `--events-backend file`: there is no systemd;
- `--runtime runc`;
- ulimits no higher than the sandbox's own hard limits, which runc cannot
  raise (podman's defaults are higher, and runc then fails to start anything).

Images are built with `--isolation chroot`, which runs RUN steps without
namespaces; the images built here have none, but nothing breaks if one does.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

RUN_FLAGS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


class Podman:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.base = [
            "podman",
            "--root",
            str(home / "storage"),
            "--runroot",
            str(home / "run"),
            "--tmpdir",
            str(home / "tmp"),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            "--runtime",
            "runc",
        ]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.base, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} exited {done.returncode}\n"
                f"stdout: {done.stdout}\nstderr: {done.stderr}"
            )
        return done

    def build(
        self,
        context: Path,
        tag: str,
        *,
        target: str | None = None,
    ) -> str:
        args = ["build", "--isolation", "chroot", "--tag", tag]
        if target is not None:
            args += ["--target", target]
        self(*args, str(context), timeout=300)
        return tag

    def run(
        self,
        image: str,
        *command: str,
        options: Sequence[str] = (),
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """`podman run --rm` in the foreground; the result carries the container's exit status."""
        return self(
            "run",
            "--rm",
            *RUN_FLAGS,
            *options,
            image,
            *command,
            check=False,
            timeout=timeout,
        )

    def start(self, image: str, *command: str, options: Sequence[str] = ()) -> str:
        """`podman run --detach`; returns the container's name (remove it with `remove`)."""
        name = f"si-test-{uuid.uuid4().hex[:12]}"
        self("run", "--detach", "--name", name, *RUN_FLAGS, *options, image, *command)
        return name

    def wait_for_output(self, name: str, text: str, timeout: float = 60) -> str:
        """Poll the container's logs until `text` shows up (or it stops, or time runs out)."""
        deadline = time.monotonic() + timeout
        while True:
            logs = self("logs", name)
            seen = logs.stdout + logs.stderr
            if text in seen:
                return seen
            state = self("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
            if state != "running" or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; container {state}; logs:\n{seen}")
            time.sleep(0.1)

    def exit_code(self, name: str) -> int:
        return int(self("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip())

    def remove(self, name: str) -> None:
        self("rm", "--force", "--time", "0", name, check=False)

    def destroy(self) -> None:
        """Remove every container and image of this store, then the store itself."""
        self("rm", "--all", "--force", "--time", "0", check=False)
        self("rmi", "--all", "--force", check=False)
        shutil.rmtree(self.home, ignore_errors=True)
