"""Rotation, the child's half: fetch every reference again, compare, and say what changed.

Runs in a short-lived child of PID 1, never in PID 1 (see `secrets_init.rotation`
for PID 1's half, the key and the report). The same scan, batching and checks
as the first resolution; values live only here and die with this process,
or go on into the program when this child becomes the restarted program.

What a refresh child does with what it fetched:
- any reference failed: a warning per failing variable, nothing changes (a
  program is never given a partial environment, nor some new files and not
  others); the next refresh is tried on schedule;
- nothing changed: nothing happens;
- only files changed: they are replaced atomically (every one or none), and
  PID 1 sends the program `--refresh-signal`;
- an environment value changed, `--on-change restart`: the new environment is
  built and checked, changed files are replaced, and this child waits for PID 1
  to stop the old program, then becomes the new one (as `secrets_init.child`
  does): the program is restarted with what this refresh fetched, not after a
  second fetch that could fail once the old program is already gone;
- with `--on-change exit`: PID 1 stops the program and exits; nothing is written.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Mapping, Sequence

from secrets_init import environment, exits, fetching, files, providers, references, signals
from secrets_init.config import Settings
from secrets_init.fetching import Fetched
from secrets_init.log import Logger
from secrets_init.references import Reference, ResolutionError
from secrets_init.rotation import Channel, Keyring, Known

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

_ENCODING = ("utf-8", "surrogateescape")
_KEY_SIZE = 32


def first_resolution(
    environ: Mapping[bytes, bytes],
    found: Sequence[Reference],
    settings: Settings,
    private_dir: str | None,
    log: Logger,
    channel: Channel,
) -> tuple[dict[bytes, bytes], list[ResolutionError]]:
    """`environment.program_environment`, and then the run's key and the first digests.

    Only a resolution that succeeded reports: otherwise the program does not start.
    """
    fetched, errors = _fetch(found, settings, log)
    result, build_errors = environment.build(
        environ,
        fetched,
        expand_json=settings.expand_json,
        private_dir=private_dir,
        write_files=not errors,
    )
    errors += build_errors
    if errors:
        return result, errors
    key = os.urandom(_KEY_SIZE)
    os.write(channel.keyring.writer, key)
    lines = _digest_lines(key, fetched)
    for item in fetched:
        if item.reference.destination == files.TEMPFILE:
            path = result[item.reference.name]
            lines.append(b"path %s %s" % (item.reference.name.hex().encode(), path.hex().encode()))
    if private_dir is not None:
        lines.append(b"private %s" % os.fsencode(private_dir).hex().encode())
    _send(channel, [*lines, b"action none"])
    return result, []


def refresh(settings: Settings, channel: Channel, known: Known, log: Logger) -> NoReturn:
    """The refresh child: never returns (exits, or execs the restarted program)."""
    try:
        from secrets_init import child, terminal

        in_supervisor_session = terminal.leave_supervisor_group()
        signals.reset_for_exec(keep_python_ignores=True)
        child._no_core_dumps(log)
        outcome = _refresh(settings, channel, known, log)
        if outcome is None:
            os._exit(exits.OK)
        if os.read(channel.go_read, 1) != b"g":  # PID 1 gave the restart up
            os._exit(exits.OK)
        child.exec_program(settings, outcome, in_supervisor_session, log)
    except BaseException as error:  # noqa: BLE001 - last resort before os._exit
        log.error(f"internal error while refreshing secrets: {type(error).__name__}")
        os._exit(exits.ERROR)


def _refresh(
    settings: Settings, channel: Channel, known: Known, log: Logger
) -> dict[bytes, bytes] | None:
    """Fetch, compare, act; the environment of the program this child will become, if it will."""
    environ = {name: value for name, value in os.environb.items() if name}
    found, malformed = references.scan(environ, settings.provider)
    key = _read_key(channel.keyring)
    if key is None:  # only a bug could take it: there is nothing to compare with
        log.warning("refresh: the run's key is gone; the program keeps running")
        _send(channel, [b"action failed"])
        return None
    fetched, errors = _fetch(found, settings, log)
    if malformed or errors:
        _failed([*malformed, *errors], channel, log)
        return None
    digests = _digest_lines(key, fetched)
    changed = [item for item in fetched if _differs(key, item, known)]
    if not changed:
        _send(channel, [b"action none"])
        return None
    env_changed = [item for item in changed if item.reference.destination is None]
    files_changed = [item for item in changed if item.reference.destination is not None]
    names = [
        b"%s %s"
        % (b"file" if item.reference.destination else b"env", item.reference.name.hex().encode())
        for item in changed
    ]
    action = settings.on_change if env_changed else "signal"
    if action == "exit":
        _send(channel, [*names, b"action exit"])
        return None
    program_environ, build_errors = environment.build(
        environ,
        fetched,
        expand_json=settings.expand_json,
        private_dir=known.private_dir,
        write_files=False,
    )
    if build_errors:
        _failed(build_errors, channel, log)
        return None
    for item in fetched:
        if item.reference.destination is not None:
            program_environ[item.reference.name] = _path_of(item, known).encode(*_ENCODING)
    if action == "restart":
        try:
            os.chdir(known.cwd)
        except OSError as error:
            problem = f"cannot enter {known.cwd}, where the program was started: {error.strerror}"
            log.warning(f"refresh: {problem}; the program keeps running")
            _send(channel, [b"action failed"])
            return None
    secrets = [
        (item.reference.variable, _path_of(item, known), item.value) for item in files_changed
    ]
    try:
        files.write_secrets(known.private_dir, secrets)
    except files.SecretFileError as error:
        failed = files_changed[error.index or 0].reference
        _failed([ResolutionError.of(failed, str(error))], channel, log)
        return None
    _send(channel, [*digests, *names, b"action " + action.encode()])
    return program_environ if action == "restart" else None


def _failed(errors: Sequence[ResolutionError], channel: Channel, log: Logger) -> None:
    """One warning per failing variable, as at start; never a value."""
    for error in errors:
        log.warning(f"refresh: {error}; the program keeps running with what it has")
    _send(channel, [b"action failed"])


def _fetch(
    found: Sequence[Reference], settings: Settings, log: Logger
) -> tuple[list[Fetched], list[ResolutionError]]:
    context = providers.FetchContext(
        deadline=time.monotonic() + settings.timeout,
        timeout=settings.timeout,
        log=log,
        google_project=settings.google_project,
    )
    return fetching.fetch_all(found, context)


def digest(key: bytes, name: bytes, value: bytes) -> bytes:
    """What tells a variable's value from another, without revealing it to anyone without `key`."""
    return hmac.digest(key, name + b"\0" + value, "sha256")


def _differs(key: bytes, item: Fetched, known: Known) -> bool:
    name = item.reference.name
    return not hmac.compare_digest(digest(key, name, item.value), known.digests.get(name, b""))


def _digest_lines(key: bytes, fetched: Sequence[Fetched]) -> list[bytes]:
    return [
        b"digest %s %s"
        % (
            item.reference.name.hex().encode(),
            digest(key, item.reference.name, item.value).hex().encode(),
        )
        for item in fetched
    ]


def _path_of(item: Fetched, known: Known) -> str:
    """The file a file reference was given at start: its destination, or its tempfile's path."""
    destination = item.reference.destination or ""
    return known.paths.get(item.reference.name, destination)


def _read_key(keyring: Keyring) -> bytes | None:
    """The run's key, left in place for the next refresh (MSG_PEEK)."""
    import socket

    holder = socket.socket(fileno=keyring.reader)
    try:
        key = holder.recv(_KEY_SIZE * 2, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        key = b""
    finally:
        holder.detach()
    return key if len(key) == _KEY_SIZE else None


def _send(channel: Channel, lines: Sequence[bytes]) -> None:
    data = b"\n".join([*lines, b"end", b""])
    view = memoryview(data)
    while view:
        view = view[os.write(channel.report_write, view) :]
