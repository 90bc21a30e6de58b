"""Run by bench.profile as `python -I -X importtime -m bench.trace`: one resolution, phase by phase.

This process does the resolving child's work (scan the environment, fetch
every reference through the providers) without the fork, and wraps a few
SDK functions once their modules are loaded, so each phase is a span on the
thread that ran it: the provider import, the botocore session, the
credential lookup, every client's creation, request signing, each HTTP
exchange and the parsing of its answer. It prints the spans as JSON on
stdout; `-X importtime` prints the import tree on stderr. BENCH_SPAWNED is
the parent's time.monotonic() just before it spawned this interpreter, so the
first span is the interpreter's own start.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()

import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

Span = tuple[str, str, float, float]  # thread, what, start, end (time.monotonic())
_spans: list[Span] = []
_lock = threading.Lock()


def _record(what: str, start: float) -> None:
    span = (threading.current_thread().name, what, start, time.monotonic())
    with _lock:
        _spans.append(span)


def _wrap(owner: Any, name: str, label: Callable[..., str]) -> None:
    """Time every call of `owner.name`, labelled by `label(*args, **kwargs)`."""
    original = getattr(owner, name)
    if getattr(original, "_traced", False):
        return

    @functools.wraps(original)
    def traced(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            _record(label(*args, **kwargs), start)

    traced._traced = True  # type: ignore[attr-defined]
    setattr(owner, name, traced)


def _client_label(_session: Any, service: str, region_name: str | None = None, **_: Any) -> str:
    return f"client {service} {region_name}"


def _trace_botocore() -> None:
    """Wrap the SDK's phases; only modules a resolution imports anyway."""
    session = sys.modules.get("botocore.session")
    if session is None:
        return
    import botocore.auth
    import botocore.endpoint
    import botocore.parsers

    _wrap(session.Session, "__init__", lambda *a, **k: "botocore session")
    _wrap(session.Session, "get_credentials", lambda *a, **k: "credential lookup")
    _wrap(session.Session, "create_client", _client_label)
    _wrap(botocore.auth.SigV4Auth, "add_auth", lambda *a, **k: "signing")
    _wrap(
        botocore.endpoint.Endpoint,
        "_send",
        lambda endpoint, *a, **k: f"HTTP exchange {endpoint._endpoint_prefix}",
    )
    _wrap(botocore.parsers.ResponseParser, "parse", lambda *a, **k: "parsing an answer")


def main() -> None:
    from secrets_init import fetching, providers, references
    from secrets_init.log import Logger

    _record("secrets_init imports", STARTED)
    imported = time.monotonic()
    original_fetcher = providers.ProviderEntry.fetcher

    def fetcher(entry: providers.ProviderEntry) -> providers.Fetcher:
        start = time.monotonic()
        try:
            return original_fetcher(entry)
        finally:
            _record(f"import the {entry.name} provider and its SDK", start)
            _trace_botocore()

    providers.ProviderEntry.fetcher = fetcher  # type: ignore[method-assign]
    found, malformed = references.scan(os.environb)
    assert not malformed, malformed
    _record("scan the environment", imported)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    started = time.monotonic()
    context = providers.FetchContext(deadline=started + 30, timeout=30, log=Logger("error"))
    fetched, errors = fetching.fetch_all(found, context)
    _record("resolution (the child's `resolved in` time)", started)
    assert not errors and len(fetched) == len(found), [str(error) for error in errors]
    spawned = float(os.environ["BENCH_SPAWNED"])
    _spans.append(("MainThread", "interpreter start (spawn to the first line)", spawned, STARTED))
    json.dump(
        {
            "spawned": spawned,
            "spans": sorted(_spans, key=lambda span: span[2]),
            "references": len(found),
            "page_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
