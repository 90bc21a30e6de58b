"""Secrets delivered as files (`?destination=`), written before the program starts.

Files are created 0400 with O_EXCL so there is no moment at which another
user could open them, and written completely before exec. `tempfile`
destinations live in one private 0700 directory that the supervisor creates
before the fork and removes when it exits; explicit destinations belong to
the user and are replaced atomically (temp file in the same directory, then
rename), so a reader never sees half a secret. They are written all or none,
and only once every reference has resolved (see `write_secrets`).
"""

from __future__ import annotations

import os

from secrets_init import signals

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: PID 1 imports this module (see choose_base)
if TYPE_CHECKING:
    from collections.abc import Sequence

DEFAULT_BASES = ("/dev/shm",)
TEMPFILE = "tempfile"  # the destination that means "a file in the private directory"


class SecretFileError(OSError):
    """A secret could not be written; the message names the path, never the value.

    `index` is the item of `write_secrets` that failed, when one did.
    """

    index: int | None = None


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


def _write_under_new_name(directory: str, stem: str, data: bytes) -> str:
    """Write into a file of `directory` that did not exist, named `stem` or `stem-N`."""
    for attempt in range(1, 1000):
        path = os.path.join(directory, stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            _write_new(path, data)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free name for {stem} in {directory}")


def check_destination(path: str) -> str:
    """What writing to `path` would refuse, without writing (for --check, and before any write)."""
    directory = os.path.dirname(path) or "/"
    if not os.path.isdir(directory):
        raise SecretFileError(f"directory {directory} does not exist")
    return directory


def write_secrets(private_dir: str | None, secrets: Sequence[tuple[str, str, bytes]]) -> list[str]:
    """Write every secret file or none; returns their paths, in order.

    `secrets` holds (variable, destination, data); the destination is
    "tempfile" (a file named after the variable in `private_dir`) or an
    absolute path, replaced atomically: the data is written to a new file
    beside it (staging) and renamed over it. Every staging file is written
    before the first rename, so a failure changes no destination.

    TERM, INT, HUP and QUIT are held meanwhile: a staging file (mode 0400,
    holding the secret) must not outlive us beside the destination. The
    signal is delivered once the staging files are gone: renamed, or removed
    when we stop early for it. Raises SecretFileError with `.index`, the
    failed item.
    """
    staged: dict[int, str] = {}
    paths: dict[int, str] = {}
    with _HeldSignals() as held:
        try:
            for index, (_, destination, data) in enumerate(secrets):
                if destination != TEMPFILE and not held.caught:
                    staged[index] = _stage(index, destination, data)
            for index, (variable, destination, data) in enumerate(secrets):
                if destination == TEMPFILE and not held.caught:
                    paths[index] = _write_tempfile(index, private_dir, variable, data)
            for index in sorted(staged):
                if held.caught:
                    break
                destination = secrets[index][1]
                try:
                    os.rename(staged.pop(index), destination)
                except OSError as error:
                    raise _failed(index, destination, error) from None
                paths[index] = destination
        finally:
            for staging in staged.values():
                try:
                    os.unlink(staging)
                except OSError:
                    pass
    if len(paths) < len(secrets):  # a held signal came, and its handler returned
        raise SecretFileError("stopped by a signal before every secret file was written")
    return [paths[index] for index in range(len(secrets))]


def _stage(index: int, destination: str, data: bytes) -> str:
    stem = f".{os.path.basename(destination)}.secrets-init-{os.urandom(4).hex()}"
    try:
        return _write_under_new_name(check_destination(destination), stem, data)
    except OSError as error:
        raise _failed(index, destination, error) from None


def _write_tempfile(index: int, private_dir: str | None, variable: str, data: bytes) -> str:
    """A file named after the variable (`-2`, `-3`... when names collide, as A_B and A B do)."""
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in variable) or "secret"
    if private_dir is None:
        missing = SecretFileError("no private directory for tempfile destinations")
        raise _failed(index, stem, missing)
    try:
        return _write_under_new_name(private_dir, stem, data)
    except OSError as error:
        raise _failed(index, os.path.join(private_dir, stem), error) from None


def _failed(index: int, path: str, error: OSError) -> SecretFileError:
    problem = SecretFileError(f"cannot write {path}: {error.strerror or error}")
    problem.index = index
    return problem


class _HeldSignals:
    """TERM, INT, HUP and QUIT are noted instead of acted on, then raised again at the end.

    The disposition, not the signal mask, is what holds them: a mask is per
    thread, and the SDKs' threads (still running, or stuck) would take a
    process-directed TERM and die of it at once. Only the main thread may set
    a disposition; elsewhere (never the case in secrets-init) nothing is held.
    """

    def __init__(self) -> None:
        self.caught: list[int] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _HeldSignals:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for number in signals.STOP_RESOLVING:
                self._previous[number] = signal.signal(number, self._note)
        return self

    def _note(self, number: int, frame: object) -> None:
        self.caught.append(number)

    def __exit__(self, *_: object) -> None:
        import signal

        for number, previous in self._previous.items():
            signal.signal(number, previous)  # type: ignore[arg-type]
        for number in self.caught[:1]:
            signal.raise_signal(number)
