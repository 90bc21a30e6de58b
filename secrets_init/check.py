"""`--check`: resolve everything, report per reference, run nothing.

Runs in-process (there is no program to exec, so no reason to fork) and
prints names, providers, references and status only, never a value.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

from secrets_init import environment, providers, resolver
from secrets_init.config import Settings
from secrets_init.log import Logger
from secrets_init.references import Reference, ResolutionError


def run_check(
    settings: Settings, references: Sequence[Reference], private_dir: str | None, log: Logger
) -> int:
    context = providers.FetchContext(
        deadline=time.monotonic() + settings.timeout,
        timeout=settings.timeout,
        log=log,
        google_project=settings.google_project,
    )
    resolved, errors = resolver.resolve(references, context)
    _, build_errors = environment.build(
        dict(os.environb),
        resolved,
        expand_json=settings.expand_json,
        private_dir=private_dir,
        write_files=False,
    )
    failed: dict[str, ResolutionError] = {e.variable: e for e in [*errors, *build_errors]}
    for reference in references:
        error = failed.get(reference.variable)
        status = "ok" if error is None else f"error: {error.cause}"
        sys.stdout.write(f"{reference.variable} {reference.provider} {reference.text} {status}\n")
    sys.stdout.flush()
    return 1 if failed else 0


def report_malformed(errors: Sequence[ResolutionError]) -> None:
    for error in errors:
        sys.stdout.write(f"{error.variable} - {error.reference} error: {error.cause}\n")
    sys.stdout.flush()
