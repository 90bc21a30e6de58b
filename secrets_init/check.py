"""`--check`: resolve everything, report per reference, run nothing.

Runs in-process (there is no program to exec, so no reason to fork) and
prints names, providers, references and status only, never a value.
"""

from __future__ import annotations

import os
import sys

from secrets_init import environment, exits, references
from secrets_init.config import Settings
from secrets_init.log import Logger
from secrets_init.references import ResolutionError


def run_check(settings: Settings, private_dir: str | None, log: Logger) -> int:
    environ = dict(os.environb)
    found, malformed = references.scan(environ, settings.provider)
    for problem in malformed:
        sys.stdout.write(f"{problem.variable} - {problem.reference} error: {problem.cause}\n")
        log.error(str(problem))
    if malformed:
        sys.stdout.flush()
        return exits.ERROR
    _, errors = environment.program_environment(
        environ, found, settings, private_dir, log, write_files=False
    )
    failed: dict[str, ResolutionError] = {e.variable: e for e in errors}
    for reference in found:
        error = failed.get(reference.variable)
        status = "ok" if error is None else f"error: {error.cause}"
        sys.stdout.write(f"{reference.variable} {reference.provider} {reference.text} {status}\n")
    sys.stdout.flush()
    return exits.ERROR if failed else exits.OK
