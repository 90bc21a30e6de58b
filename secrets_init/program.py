"""Starting the program: the two ways, and the rules they share.

When something must happen between fork and exec (references to resolve, a
terminal to hand over), a forked child does it and then execs the program
(`secrets_init.child`). When nothing must, PID 1 starts the program itself
with posix_spawn(), as CPython's subprocess does whenever it can, and for
the same reason: fork copies the whole interpreter's page tables and the
child then runs Python until its exec, 1.7 ms of every start here, while
posix_spawn borrows the parent's memory until the exec (vfork) and reports
an exec error to the caller. Either way the program gets the same
environment (`without_unnamed`, `scrub_frozen_variables`), is looked for on
PATH by the same rules (`run_from_path`), starts with default signal
dispositions and an empty mask in a session of its own, and fails to start
with the same words and status (`StartError`).

PID 1 imports this module: standard library and PID 1's own modules only.
"""

import os
import sys

from secrets_init import candidates, exits, libc, signals

# Annotations only, quoted: see `secrets_init.cli` for why PID 1's modules
# import neither typing nor __future__.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import TypeVar

    from secrets_init.log import Logger

    T = TypeVar("T")

# Variables a frozen build's bootloader adds for itself; the program must not
# inherit them. The launcher keeps the user's own LD_LIBRARY_PATH aside in
# _SECRETS_INIT_ORIG_LD_LIBRARY_PATH (unset when there was none).
_FROZEN_VARIABLES = (b"_MEIPASS2", b"_PYI_", b"_SECRETS_INIT_")
_SAVED_LD_PATH = b"_SECRETS_INIT_ORIG_LD_LIBRARY_PATH"


class StartError(Exception):
    """The program could not be started; `status` is what secrets-init exits with."""

    def __init__(self, file: str, error: OSError) -> None:
        import errno  # only here: a program that starts never needs it

        not_found = error.errno in (errno.ENOENT, errno.ENOTDIR)
        reason = "command not found" if not_found else f"cannot execute: {error.strerror}"
        super().__init__(f"{file}: {reason}")
        self.status = exits.NOT_FOUND if not_found else exits.CANNOT_EXECUTE


def spawnable(environ: "Mapping[bytes, bytes]") -> bool:
    """Whether PID 1 may spawn the program: no reference to resolve, no terminal to hand over."""
    return not candidates.has_references(environ) and not os.isatty(0)


def become_subreaper() -> None:
    """Adopt orphans of the program when we are not PID 1 (the local shell case).

    Before the program starts, whichever way: once it runs, an orphan of
    its could be re-parented to another reaper before we are one.
    """
    pr_set_child_subreaper = 36
    if libc.call("prctl", pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        raise OSError("prctl(PR_SET_CHILD_SUBREAPER) failed")


def spawn(command: "Sequence[str]", log: "Logger") -> int | None:
    """Start the program from PID 1 (see the module docstring); its pid, or StartError.

    None where this Python's posix_spawn cannot give the program a session of
    its own (it was built against a C library without POSIX_SPAWN_SETSID):
    the caller forks instead.
    """
    environ = scrub_frozen_variables(without_unnamed(dict(os.environb), log))
    argv = list(command)
    every_signal = signals.catchable()

    def attempt(path: bytes) -> int:
        # PATH's misses are found by stat(), which fails as exec would, for
        # the price of a system call instead of a process.
        os.stat(path)
        return os.posix_spawn(
            path, argv, environ, setsid=True, setsigmask=(), setsigdef=every_signal
        )

    try:
        return run_from_path(argv[0], environ, attempt)
    except OSError as error:
        raise StartError(argv[0], error) from None
    except NotImplementedError:
        return None


def run_from_path(file: str, environ: "dict[bytes, bytes]", attempt: "Callable[[bytes], T]") -> "T":
    """`attempt` on each place PATH gives for `file`, as execvp(3) searches it, until one runs.

    os.execvpe would do for the forked child, but it asks os.get_exec_path,
    which imports `warnings` (0.8 ms of every frozen start), and posix_spawnp
    stops at the first error that is not "not found", where execvp goes on.
    The rules: a name with a slash is run as it is; otherwise each PATH entry
    is tried in turn (an empty one is the working directory, no PATH is
    os.defpath), and when none runs, the first error other than "not found"
    is the one raised.
    """
    name = os.fsencode(file)
    if b"/" in name:
        return attempt(name)
    path = environ.get(b"PATH", os.fsencode(os.defpath))
    failures: list[OSError] = []
    for directory in path.split(b":"):  # at least one entry, maybe empty
        try:
            return attempt(os.path.join(directory, name))
        except OSError as error:
            failures.append(error)
    other = [f for f in failures if not isinstance(f, FileNotFoundError | NotADirectoryError)]
    raise other[0] if other else failures[-1]


def without_unnamed(environ: "dict[bytes, bytes]", log: "Logger") -> "dict[bytes, bytes]":
    """Drop an entry with an empty name (`=value`), with a warning.

    execve() allows one, but Python's exec and posix_spawn refuse it, so kept
    it would stop every program from starting, references or not.
    """
    if b"" not in environ:
        return environ
    log.warning("dropped an environment entry with an empty name ('=...'); it cannot be passed on")
    return {name: value for name, value in environ.items() if name}


def scrub_frozen_variables(environ: "dict[bytes, bytes]") -> "dict[bytes, bytes]":
    """Remove what the frozen build's bootloader set, restoring LD_LIBRARY_PATH."""
    if not getattr(sys, "frozen", False):
        return environ
    saved = environ.get(_SAVED_LD_PATH)
    cleaned = {k: v for k, v in environ.items() if not k.startswith(_FROZEN_VARIABLES)}
    cleaned.pop(b"LD_LIBRARY_PATH", None)
    if saved is not None:
        cleaned[b"LD_LIBRARY_PATH"] = saved
    return cleaned
