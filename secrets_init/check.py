"""`--check`: resolve everything, report per reference, run nothing.

Runs in-process (there is no program to exec, so no reason to fork) and
prints names, providers, references and status only, never a value.
Resolving runs in a thread (which, like every thread here, has every
signal blocked) while the main thread watches the signal inbox:
TERM, INT, HUP or QUIT end the check at once, as they end a resolving child,
instead of waiting for --timeout.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence

from secrets_init import environment, exits, references, signals
from secrets_init.config import Settings
from secrets_init.log import Logger
from secrets_init.references import Reference, ResolutionError


def run_check(
    settings: Settings, inbox: signals.SignalInbox, private_dir: str | None, log: Logger
) -> int:
    environ = dict(os.environb)
    found, malformed = references.scan(environ, settings.provider)
    for problem in malformed:
        sys.stdout.write(f"{problem.variable} - {problem.reference} error: {problem.cause}\n")
        log.error(str(problem))
    if malformed:
        sys.stdout.flush()
        return exits.ERROR
    checked = _until_stopped(
        inbox,
        lambda: environment.program_environment(
            environ, found, settings, private_dir, log, write_files=False
        )[1],
    )
    if isinstance(checked, int):
        log.info(f"received {signals.signal_name(checked)} while checking; stopping")
        return exits.killed_by(checked)
    return _report(found, checked)


def _report(found: Sequence[Reference], errors: Sequence[ResolutionError]) -> int:
    failed: dict[str, ResolutionError] = {e.variable: e for e in errors}
    for reference in found:
        error = failed.get(reference.variable)
        status = "ok" if error is None else f"error: {error.cause}"
        sys.stdout.write(f"{reference.variable} {reference.provider} {reference.text} {status}\n")
    sys.stdout.flush()
    return exits.ERROR if failed else exits.OK


def _until_stopped(
    inbox: signals.SignalInbox, check: Callable[[], list[ResolutionError]]
) -> list[ResolutionError] | int:
    """What `check()` returns, or the number of the signal that came first to stop it."""
    done_read, done_write = os.pipe2(os.O_CLOEXEC)
    answer: list[list[ResolutionError]] = []
    crash: list[BaseException] = []

    def work() -> None:
        try:
            answer.append(check())
        except BaseException as error:  # noqa: BLE001 - raised again in the main thread
            crash.append(error)
        finally:
            os.close(done_write)

    threading.Thread(target=work, name="check", daemon=True).start()
    try:
        while True:
            ready, received = inbox.wait([done_read])
            for number in received:
                if number in signals.STOP_RESOLVING:
                    return number
            if done_read in ready:
                break
    finally:
        os.close(done_read)
    if crash:
        raise crash[0]
    return answer[0]
