"""Entry point: signals first, then settings, then one of run / check / copy.

The exit statuses are listed, with their reasons, in `secrets_init.exits`.
"""

import gc
import os
import sys

# The modules PID 1 imports on its way to spawning a program (this one, and
# see tests/test_pid1_imports.py) do without `from __future__ import
# annotations`: at run time that line imports the `__future__` module, 0.1 ms
# of every start. What their annotations name only for type checkers is
# quoted instead.

# No cyclic garbage collection until the program starts (see `supervisor._keep_for_good`):
# what PID 1 imports and builds lives as long as it does, so a collection
# would walk it all and free nothing. One fell within these imports at each
# `python -m secrets_init` start: 0.4-0.5 ms, 8% of a bare interpreter's.
gc.disable()

from secrets_init import signals  # noqa: E402

# Made at import, before anything else can fail or take time: from here on
# every signal is queued for the supervisor (a PID 1 without handlers would
# silently drop them), and a TERM sent while secrets are being fetched is not
# lost.
_INBOX = signals.SignalInbox()

from secrets_init import __version__, candidates, config, exits  # noqa: E402
from secrets_init.log import Logger  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    try:
        status = _main(sys.argv[1:] if argv is None else argv)
    except BaseException as error:
        if isinstance(error, SystemExit):
            raise
        # No traceback: its frames could show locals holding secret values.
        Logger().error(f"internal error: {type(error).__name__}")
        status = exits.ERROR
    # Straight out, without interpreter finalization: tearing down every module
    # costs a few milliseconds at each container stop and frees nothing the
    # kernel would not. Files are closed by then; only stdio needs a flush.
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None when the fd was closed at start
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def _main(argv: list[str]) -> int:
    try:
        settings = config.parse(argv, os.environ)
    except config.UsageError as error:
        sys.stderr.write(f"secrets-init: {error}\n{config.USAGE}")
        return exits.USAGE
    if settings.action == "help":
        sys.stdout.write(config.help_text())
        return exits.OK
    if settings.action == "version":
        sys.stdout.write(version_text())
        return exits.OK
    log = Logger(settings.log_level, settings.log_format)
    if settings.action == "copy":
        return _copy(settings, log)
    private_dir = None
    try:
        if candidates.wants_tempfile(os.environb):
            from secrets_init import files

            try:
                private_dir = files.make_private_dir(files.choose_base(settings.secrets_dir))
            except files.SecretFileError as problem:
                log.error(str(problem))
                return exits.ERROR
        if settings.action == "check":
            gc.enable()  # no fork to turn it on again: the check resolves in this process
            from secrets_init.check import run_check

            return run_check(settings, _INBOX, private_dir, log)
        return _run(settings, private_dir, log)
    finally:
        if private_dir is not None:
            from secrets_init import files

            files.remove_private_dir(private_dir)


def _copy(settings: config.Settings, log: Logger) -> int:
    from secrets_init.selfcopy import copy_self

    try:
        target = copy_self(settings.copy_dest)
    except OSError as error:
        log.error(f"copy to {settings.copy_dest}: {error.strerror or error}")
        return exits.ERROR
    log.info(f"copied to {target}")
    return exits.OK


def _run(settings: config.Settings, private_dir: str | None, log: Logger) -> int:
    """Supervise the program: spawned when nothing is to be done first, else a forked child's."""
    from secrets_init import program

    if os.getpid() != 1:
        try:
            program.become_subreaper()
        except OSError as error:
            log.warning(f"cannot become a child subreaper, orphans will not be reaped: {error}")
    # As while a forked child resolves: what came before the program exists
    # is held for it, but TERM, INT, QUIT or HUP mean no program.
    _, held = _INBOX.wait(timeout=0)
    stop = next((number for number in held if number in signals.STOP_RESOLVING), None)
    if stop is not None:
        name = signals.signal_name(stop)
        log.info(f"received {name} before starting the program; not starting it")
        return exits.killed_by(stop)
    child = None
    if program.spawnable(os.environb):
        try:
            child = program.spawn(settings.command, log)  # None: it must be forked after all
        except program.StartError as error:
            log.error(str(error))
            return error.status
    # After a spawn, the program is on its way: this import runs while it starts.
    from secrets_init import supervisor

    if child is not None:
        return supervisor.supervise_spawned(settings, _INBOX, child, held, log)
    from secrets_init.child import become_program

    return supervisor.supervise_forked(
        settings, _INBOX, lambda: become_program(settings, private_dir, log), held, log
    )


def version_text() -> str:
    lines = [f"secrets-init {__version__}"]
    from importlib import metadata

    for package in ("boto3", "botocore", "google-auth", "urllib3"):
        try:
            lines.append(f"  {package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            lines.append(f"  {package} not installed")
    return "\n".join(lines) + "\n"
