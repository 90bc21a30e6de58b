"""Fetch every reference through its provider, all providers at once.

Runs in the forked child (or in-process for --check), never in the
supervising PID 1. Each provider gets one call with all of its distinct
targets, in its own thread, so AWS batches and Google calls overlap; the
providers batch and parallelise further inside, on their own `Pool`. Everything
must be back by the deadline, otherwise the missing targets fail with a timeout.
"""

from __future__ import annotations

import gc
import threading
import time
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from secrets_init import providers, values
from secrets_init.providers import pool
from secrets_init.references import Reference, ResolutionError

# How long past the deadline we wait for a provider before giving up on it:
# providers stop themselves at the deadline, this only covers a stuck SDK.
_GRACE = 1.0


def _silence_warnings() -> None:
    """The SDKs' Python warnings are not ours to print: stderr carries secrets-init's lines only.

    Set before any SDK is imported, this filter is in every copy of the
    process-wide filter list that `warnings.catch_warnings` saves and puts
    back. That is how, with both providers, urllib3's DependencyWarning about
    SOCKS came through: botocore enters `catch_warnings` while importing
    (and google-auth while finding credentials), and when its exit put back
    the list it had saved, it dropped the filter that `requests` had just added,
    in another thread, to silence that very warning.
    """
    warnings.simplefilter("ignore")


# Fetch modules are imported one at a time: when two providers' threads import
# a shared module (aws_client) whose SDK is missing, the second one would see
# the first one's half-done import fail and report the wrong missing name.
_importing = threading.Lock()


@dataclass(frozen=True)
class Fetched:
    reference: Reference
    value: bytes  # after JSON-key selection; never logged


def fetch_all(
    references: Sequence[Reference], context: providers.FetchContext
) -> tuple[list[Fetched], list[ResolutionError]]:
    """Values for every reference that was fetched, and an error for each that was not."""
    _silence_warnings()
    by_provider: dict[str, set[Hashable]] = {}
    for reference in references:
        by_provider.setdefault(reference.provider, set()).add(reference.target)

    results: dict[str, dict[Hashable, providers.Outcome]] = {}
    workers = [
        threading.Thread(
            target=_fetch_into,
            args=(results, name, targets, context),
            name=f"fetch-{name}",
            daemon=True,
        )
        for name, targets in by_provider.items()
    ]
    # No cyclic garbage collection while the providers import and set up their
    # SDKs: those make ~100,000 objects that all live until the exec, and the
    # collections they trigger find next to nothing yet cost ~15% of that work.
    # Frozen before the collector is back, or its first run walks them all.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(max(0.0, context.deadline - time.monotonic()) + _GRACE)
    finally:
        if collecting:
            gc.freeze()
            gc.enable()

    fetched: list[Fetched] = []
    errors: list[ResolutionError] = []
    for reference in references:
        outcome = results.get(reference.provider, {}).get(reference.target)
        if outcome is None:
            errors.append(ResolutionError.of(reference, pool.timed_out(context.timeout)))
        elif isinstance(outcome, providers.Failure):
            errors.append(ResolutionError.of(reference, outcome.cause))
        elif reference.json_key is not None:
            try:
                fetched.append(
                    Fetched(reference, values.select_json_key(outcome, reference.json_key))
                )
            except values.UnusableValueError as error:
                errors.append(ResolutionError.of(reference, str(error)))
        else:
            fetched.append(Fetched(reference, outcome))
    return fetched, errors


def _fetch_into(
    results: dict[str, dict[Hashable, providers.Outcome]],
    name: str,
    targets: set[Hashable],
    context: providers.FetchContext,
) -> None:
    entry = providers.by_name(name)
    try:
        with _importing:
            fetcher = entry.fetcher()
    except ImportError as error:
        missing = error.name or "its SDK"
        failure = providers.Failure(
            f"the {name} provider needs {missing}, which is not installed "
            f"(pip install 'secrets-init[{entry.family}]')"
        )
        results[name] = dict.fromkeys(targets, failure)
        return
    try:
        results[name] = fetcher.fetch(targets, context)
    except Exception as error:  # noqa: BLE001 - a provider bug must not leak a message
        results[name] = dict.fromkeys(targets, providers.Failure(pool.unexpected(error, name)))
