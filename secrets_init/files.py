"""Secrets delivered as files (`?destination=`), written before the program starts.

Files are created 0400 with O_EXCL so there is no moment at which another
user could open them, and written completely before exec. `tempfile`
destinations live in one private 0700 directory that the supervisor creates
before the fork and removes when it exits; explicit destinations belong to
the user and are replaced atomically (temp file in the same directory, then
rename), so a reader never sees half a secret.
"""

from __future__ import annotations

import os

DEFAULT_BASES = ("/dev/shm",)


class SecretFileError(OSError):
    """A secret could not be written; the message names the path, never the value."""


def choose_base(configured: str | None) -> str:
    """`--secrets-dir`, else /dev/shm (memory, never on disk) when writable, else the temp dir.

    PID 1 calls this and the two functions below, so they use `os` alone:
    `tempfile` and `shutil` would bring `random`, `enum` and `re` into a
    process that lives as long as the container (tests/test_pid1_imports.py).
    """
    if configured:
        return os.path.abspath(configured)
    for base in DEFAULT_BASES:
        if os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
            return base
    for variable in ("TMPDIR", "TEMP", "TMP"):
        candidate = os.environ.get(variable)
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return os.path.abspath(candidate)
    return "/tmp"


def make_private_dir(base: str) -> str:
    """A new directory only we can enter (0700), with a name nobody can guess in advance."""
    for _ in range(100):
        path = os.path.join(base, f"secrets-init-{os.urandom(6).hex()}")
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue
        except OSError as error:
            raise SecretFileError(
                f"cannot create a private directory in {base}: {error.strerror}"
            ) from None
    raise SecretFileError(f"cannot create a private directory in {base}: every name was taken")


def remove_private_dir(path: str) -> None:
    """Remove the private directory and the files in it, without following a link.

    Only secrets-init writes into it, and only files, so one level is all
    there is; names are removed relative to the opened directory.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        for name in os.listdir(fd):
            try:
                os.unlink(name, dir_fd=fd)
            except OSError:
                pass
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except OSError:
        pass


def _write_new(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o400)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_tempfile(private_dir: str, variable: str, data: bytes) -> str:
    """Write into the private directory; returns the file's path."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in variable) or "secret"
    path = os.path.join(private_dir, safe)
    try:
        _write_new(path, data)
    except OSError as error:
        raise SecretFileError(f"cannot write {path}: {error.strerror}") from None
    return path


def check_destination(path: str) -> str:
    """What write_destination would refuse, without writing (for --check and dry runs)."""
    directory = os.path.dirname(path) or "/"
    if not os.path.isdir(directory):
        raise SecretFileError(f"directory {directory} does not exist")
    return directory


def write_destination(path: str, data: bytes) -> str:
    """Replace `path` atomically; its directory must already exist."""
    directory = check_destination(path)
    staging = os.path.join(directory, f".{os.path.basename(path)}.secrets-init-{os.getpid()}")
    try:
        try:
            os.unlink(staging)
        except FileNotFoundError:
            pass
        _write_new(staging, data)
        os.rename(staging, path)
    except OSError as error:
        try:
            os.unlink(staging)
        except OSError:
            pass
        raise SecretFileError(f"cannot write {path}: {error.strerror}") from None
    return path
