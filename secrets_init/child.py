"""What the forked child does between fork() and exec(): become the program.

It leaves secrets-init's process group (so the supervisor can signal the
program's whole group), resolves the secrets (the only place SDKs are ever
imported), takes the terminal if stdin is one, and execs the program with the
new environment. Every exit path before exec is a plain `os._exit()` with a
status the supervisor passes on (see `secrets_init.exits`).
The secret values and the SDKs' memory vanish with the exec.
"""

from __future__ import annotations

import os
import sys
import time

from secrets_init import candidates, exits, libc, signals, terminal

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms at start-up
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

    from secrets_init.config import Settings
    from secrets_init.log import Logger
    from secrets_init.references import ResolutionError

# Variables a frozen build's bootloader adds for itself; the program must not
# inherit them. The launcher keeps the user's own LD_LIBRARY_PATH aside in
# _SECRETS_INIT_ORIG_LD_LIBRARY_PATH (unset when there was none).
_FROZEN_VARIABLES = (b"_MEIPASS2", b"_PYI_", b"_SECRETS_INIT_")
_SAVED_LD_PATH = b"_SECRETS_INIT_ORIG_LD_LIBRARY_PATH"


def become_program(settings: Settings, private_dir: str | None, log: Logger) -> NoReturn:
    """Never returns: execs the program or exits with the status to report."""
    try:
        in_supervisor_session = terminal.leave_supervisor_group()
        signals.reset_for_exec(keep_python_ignores=True)
        environ = _without_unnamed(dict(os.environb), log)
        if candidates.has_references(environ):
            environ = _with_secrets(settings, private_dir, environ, log)
        exec_program(settings, environ, in_supervisor_session, log)
    except BaseException as error:  # noqa: BLE001 - last resort before os._exit
        log.error(f"internal error before starting the program: {type(error).__name__}")
        os._exit(exits.ERROR)


def exec_program(
    settings: Settings, environ: dict[bytes, bytes], in_supervisor_session: bool, log: Logger
) -> NoReturn:
    """The last steps, shared with a refresh child that becomes the restarted program."""
    environ = scrub_frozen_variables(environ)
    # Only now: keys typed while secrets are resolved still reach
    # secrets-init, which decides whether the program starts at all.
    terminal.take(in_supervisor_session, log)
    signals.reset_for_exec()
    _exec(settings.command, environ, log)


def _with_secrets(
    settings: Settings,
    private_dir: str | None,
    environ: dict[bytes, bytes],
    log: Logger,
) -> dict[bytes, bytes]:
    from secrets_init import environment, references

    _no_core_dumps(log)
    found, malformed = references.scan(environ, settings.provider)
    if malformed:
        _refuse(malformed, "malformed secret references", log)
    if not found:
        return environ
    started = time.monotonic()
    from secrets_init import rotation

    if rotation.child_channel is not None:  # --refresh: the first digests go to PID 1
        from secrets_init import refresh

        channel = rotation.child_channel
        environ, errors = refresh.first_resolution(
            environ, found, settings, private_dir, log, channel
        )
    else:
        environ, errors = environment.program_environment(
            environ, found, settings, private_dir, log
        )
    if errors:
        _refuse(errors, f"{len(errors)} of {len(found)} secret references failed", log)
    elapsed_ms = (time.monotonic() - started) * 1000
    log.info(f"resolved {len(found)} secret references in {elapsed_ms:.0f} ms")
    for reference in found:
        log.debug(f"{reference.variable}: resolved {reference.text} via {reference.provider}")
    return environ


def _without_unnamed(environ: dict[bytes, bytes], log: Logger) -> dict[bytes, bytes]:
    """Drop an entry with an empty name (`=value`), with a warning.

    execve() allows one, but Python's exec refuses it, so kept it would stop
    every program from starting, references or not.
    """
    if b"" not in environ:
        return environ
    log.warning("dropped an environment entry with an empty name ('=...'); it cannot be passed on")
    return {name: value for name, value in environ.items() if name}


def _no_core_dumps(log: Logger) -> None:
    """No core dump (nor ptrace by our own user) while credentials and values are in memory.

    PR_SET_DUMPABLE is per process and reset by exec, so the program's own
    setting is what it was; RLIMIT_CORE, which exec keeps, is left alone.
    """
    pr_set_dumpable = 4
    try:
        failed = libc.call("prctl", pr_set_dumpable, 0, 0, 0, 0) != 0
    except OSError:
        failed = True
    if failed:
        log.warning("cannot switch core dumps off while resolving secrets (prctl failed)")


def _refuse(errors: Sequence[ResolutionError], summary: str, log: Logger) -> NoReturn:
    """One line per failed variable, then a summary; the program is never started."""
    for error in errors:
        log.error(str(error))
    log.error(f"{summary}; not starting the program")
    os._exit(exits.ERROR)


def scrub_frozen_variables(environ: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """Remove what the frozen build's bootloader set, restoring LD_LIBRARY_PATH."""
    if not getattr(sys, "frozen", False):
        return environ
    saved = environ.get(_SAVED_LD_PATH)
    cleaned = {k: v for k, v in environ.items() if not k.startswith(_FROZEN_VARIABLES)}
    cleaned.pop(b"LD_LIBRARY_PATH", None)
    if saved is not None:
        cleaned[b"LD_LIBRARY_PATH"] = saved
    return cleaned


def _exec(command: Sequence[str], environ: dict[bytes, bytes], log: Logger) -> NoReturn:
    try:
        _execvpe(command[0], list(command), environ)
    except OSError as error:
        import errno  # only here: a program that starts never needs it

        not_found = error.errno in (errno.ENOENT, errno.ENOTDIR)
        reason = "command not found" if not_found else f"cannot execute: {error.strerror}"
        log.error(f"{command[0]}: {reason}")
        os._exit(exits.NOT_FOUND if not_found else exits.CANNOT_EXECUTE)


def _execvpe(file: str, argv: list[str], environ: dict[bytes, bytes]) -> NoReturn:
    """os.execvpe's search of PATH, done here on the program's bytes environment.

    os.execvpe asks os.get_exec_path, which imports `warnings` (for a PATH
    given both as str and as bytes): 0.8 ms of every frozen start, in a child
    whose environment is only bytes. The rules are the same: a name with a
    slash is run as it is; otherwise each PATH entry is tried in turn (an empty
    one is the working directory, no PATH is os.defpath), and when none runs,
    the first error other than "not found" is the one reported.
    """
    if "/" in file:
        os.execve(file, argv, environ)
    name = os.fsencode(file)
    path = environ.get(b"PATH", os.fsencode(os.defpath))
    failures: list[OSError] = []
    for directory in path.split(b":"):  # at least one entry, maybe empty
        try:
            os.execve(os.path.join(directory, name), argv, environ)
        except OSError as error:
            failures.append(error)
    other = [f for f in failures if not isinstance(f, FileNotFoundError | NotADirectoryError)]
    raise other[0] if other else failures[-1]
