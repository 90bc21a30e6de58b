"""The provider seam: how a reference is recognised, parsed and fetched.

A provider is two modules in this package, named after its `REGISTRY` entry
(`aws-ssm` is `aws_ssm_grammar` and `aws_ssm_fetch`), and one line in
`REGISTRY`:

    <name>_grammar.parse(text: str) -> Parsed
        `text` is the variable's value with any `?destination=` suffix removed.
        Raises `ReferenceSyntaxError(cause)` for a malformed reference. The
        grammar imports no SDK, so a reference is checked (and a malformed one
        reported) even where its SDK is not installed.

    <name>_fetch.fetch(targets: Collection[Target], context: FetchContext)
            -> dict[Target, bytes | Failure]
        Imports the SDK; loaded only when there is something to fetch, so a
        missing SDK is reported per reference. Returns one entry per target:
        the raw secret bytes or a `Failure` whose cause is safe to print (it
        never contains a value), by `context.deadline`. `pool.Pool` runs the
        calls and keeps that promise.

Both run in the forked child (which then execs the program) or in --check,
never in PID 1, which only looks for the byte prefixes in `secrets_init.candidates`.
"""

from __future__ import annotations

import importlib
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


Outcome = bytes | Failure  # what a fetch gives each target


@dataclass(frozen=True)
class FetchContext:
    """What every fetch needs to know about this run, and nothing it could print by mistake."""

    deadline: float  # time.monotonic() value by which fetch must return
    timeout: float  # --timeout as the user gave it, for messages ("timed out after 30s")
    log: Logger  # for debug lines: names, counts and timings, never a value
    google_project: str | None = None


class Grammar(Protocol):
    def parse(self, text: str) -> Parsed: ...


class Fetcher(Protocol):
    def fetch(
        self, targets: Collection[Hashable], context: FetchContext
    ) -> dict[Hashable, Outcome]: ...


@dataclass(frozen=True)
class ProviderEntry:
    name: str  # shown in logs and --check; names the provider's two modules
    family: str  # what --provider selects, and the pip extra that installs its SDK
    # A value is this provider's reference iff it starts with one of these; a
    # `*` field matches any text without a ':' (every ARN partition, even one
    # we cannot resolve, so that it is refused rather than passed on).
    prefixes: tuple[str, ...]

    def recognises(self, value: str) -> bool:
        return any(_starts_with(value, prefix) for prefix in self.prefixes)

    def grammar(self) -> Grammar:
        module: Grammar = importlib.import_module(f"{self._stem}_grammar")
        return module

    def fetcher(self) -> Fetcher:
        """The fetch module; raises ImportError when the provider's SDK is not installed."""
        module: Fetcher = importlib.import_module(f"{self._stem}_fetch")
        return module

    @property
    def _stem(self) -> str:
        return f"{__name__}.{self.name.replace('-', '_')}"


def _starts_with(value: str, prefix: str) -> bool:
    fields = prefix.split(":")[:-1]  # the prefix ends with ':'
    parts = value.split(":", len(fields))
    return len(parts) > len(fields) and all(
        field in ("*", part) for field, part in zip(fields, parts[:-1], strict=True)
    )


# The partitions botocore knows (its data file `partitions`; tests/test_aws_grammar.py
# compares). An ARN of any other partition is still a reference, and refused.
AWS_PARTITIONS = (
    "aws", "aws-cn", "aws-eusc", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-us-gov"
)  # fmt: skip

REGISTRY: tuple[ProviderEntry, ...] = (
    ProviderEntry("aws-secretsmanager", "aws", ("arn:*:secretsmanager:",)),
    ProviderEntry("aws-ssm", "aws", ("arn:*:ssm:",)),
    ProviderEntry("google", "google", ("gcp:secretmanager:",)),
)

FAMILIES = tuple(sorted({entry.family for entry in REGISTRY}))


def entry_for(value: str) -> ProviderEntry | None:
    for entry in REGISTRY:
        if entry.recognises(value):
            return entry
    return None


def is_reference(value: str) -> bool:
    """Whether secrets-init would treat `value` as a reference (the admission webhook asks too)."""
    return entry_for(value) is not None


def by_name(name: str) -> ProviderEntry:
    for entry in REGISTRY:
        if entry.name == name:
            return entry
    raise KeyError(name)
