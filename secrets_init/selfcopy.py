"""`secrets-init copy DEST_DIR`: put this executable where a pod's other containers see it.

Written for initContainers running an image with no shell and no `cp`.
The copy lands under a temporary name and is renamed into place, so a
container starting from the same volume never executes half a file.
"""

from __future__ import annotations

import os
import sys
import time

# The single-file launcher passes its own path here: the bootloader's
# sys.executable is only a file in the unpacked cache, not what users ran.
LAUNCHER_VARIABLE = "_SECRETS_INIT_LAUNCHER"


def running_executable() -> str:
    launcher = os.environ.get(LAUNCHER_VARIABLE)
    if launcher:
        return launcher
    if getattr(sys, "frozen", False):
        return sys.executable
    return os.path.realpath(sys.argv[0])


def copy_self(dest_dir: str) -> str:
    source = running_executable()
    target = os.path.join(dest_dir, "secrets-init")
    # Unique per attempt: a restarted initContainer gets the same pid again.
    staging = f"{target}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with open(source, "rb") as reader:
        fd = os.open(staging, flags, 0o755)
        try:
            while chunk := reader.read(1 << 20):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            os.fchmod(fd, 0o755)
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.rename(staging, target)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            os.unlink(staging)
            raise
    return target
