"""The provider seam: how a reference is recognised, parsed and fetched.

A provider is one module in this package with two functions:

    parse(text: str) -> Parsed
        Pure standard library, runs in PID 1 before the fork. `text` is the
        variable's value with any `?destination=` suffix removed. Raises
        `ReferenceSyntaxError(cause)` for a malformed reference.

    fetch(targets: Collection[Target], context: FetchContext) -> dict[Target, bytes | Failure]
        Runs only in the forked child, which execs the program afterwards, so
        this is the only place an SDK may be imported. Returns one entry per
        target: the raw secret bytes or a `Failure` whose cause is safe to print
        (it never contains a value). It must return by `context.deadline`.

Adding a provider is one module and one `ProviderEntry` line in `REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import Protocol

from secrets_init.log import Logger


class ReferenceSyntaxError(ValueError):
    """A value that claims to be a reference but is malformed; `str()` is the cause."""


@dataclass(frozen=True)
class Parsed:
    """What a provider's `parse` returns.

    `target` identifies what must be fetched: references with equal targets are
    fetched once. `json_key` selects one key of a JSON-object secret.
    """

    target: Hashable
    json_key: str | None = None


@dataclass(frozen=True)
class Failure:
    """Why a target could not be fetched, in plain words without any secret value."""

    cause: str


@dataclass(frozen=True)
class FetchContext:
    """What every fetch needs to know about this run, and nothing it could print by mistake."""

    deadline: float  # time.monotonic() value by which fetch must return
    timeout: float  # --timeout as the user gave it, for messages ("timed out after 30s")
    log: Logger  # for debug lines: names, counts and timings, never a value
    google_project: str | None = None


class Provider(Protocol):
    def parse(self, text: str) -> Parsed: ...

    def fetch(
        self, targets: Collection[Hashable], context: FetchContext
    ) -> dict[Hashable, bytes | Failure]: ...


@dataclass(frozen=True)
class ProviderEntry:
    name: str  # shown in logs and --check
    family: str  # what --provider selects
    module: str  # module in this package
    prefixes: tuple[str, ...]  # a value is this provider's reference iff it starts with one

    def load(self) -> Provider:
        import importlib

        module: Provider = importlib.import_module(f"{__name__}.{self.module}")
        return module


def _arn_prefixes(service: str) -> tuple[str, ...]:
    return tuple(f"arn:{partition}:{service}:" for partition in ("aws", "aws-cn", "aws-us-gov"))


REGISTRY: tuple[ProviderEntry, ...] = (
    ProviderEntry("aws-secretsmanager", "aws", "aws_secrets", _arn_prefixes("secretsmanager")),
    ProviderEntry("aws-ssm", "aws", "aws_ssm", _arn_prefixes("ssm")),
    ProviderEntry("google", "google", "google_secrets", ("gcp:secretmanager:",)),
)

FAMILIES = tuple(sorted({entry.family for entry in REGISTRY}))


def entry_for(value: str) -> ProviderEntry | None:
    for entry in REGISTRY:
        if value.startswith(entry.prefixes):
            return entry
    return None


def by_name(name: str) -> ProviderEntry:
    for entry in REGISTRY:
        if entry.name == name:
            return entry
    raise KeyError(name)
