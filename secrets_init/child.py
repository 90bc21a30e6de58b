"""What the forked child does between fork() and exec(): become the program.

PID 1 forks this child only when there is something to do before the exec
(see `secrets_init.program` for the other way the program starts).

It leaves secrets-init's process group (so the supervisor can signal the
program's whole group), resolves the secrets (the only place SDKs are ever
imported), takes the terminal if stdin is one, and execs the program with the
new environment. Every exit path before exec is a plain `os._exit()` with a
status the supervisor passes on (see `secrets_init.exits`).
The secret values and the SDKs' memory vanish with the exec.
"""

from __future__ import annotations

import os
import time

from secrets_init import candidates, exits, libc, program, signals, terminal

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms at start-up
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

    from secrets_init.config import Settings
    from secrets_init.log import Logger
    from secrets_init.references import ResolutionError


def become_program(settings: Settings, private_dir: str | None, log: Logger) -> NoReturn:
    """Never returns: execs the program or exits with the status to report."""
    try:
        in_supervisor_session = terminal.leave_supervisor_group()
        signals.reset_for_exec(keep_python_ignores=True)
        environ = program.without_unnamed(dict(os.environb), log)
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
    environ = program.scrub_frozen_variables(environ)
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


def _exec(command: Sequence[str], environ: dict[bytes, bytes], log: Logger) -> NoReturn:
    argv = list(command)
    try:
        program.run_from_path(argv[0], environ, lambda path: os.execve(path, argv, environ))
    except OSError as error:
        failed = program.StartError(argv[0], error)
        log.error(str(failed))
        os._exit(failed.status)
    os._exit(exits.ERROR)  # execve returns only by raising; this is belt and braces
