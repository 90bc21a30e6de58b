"""Finding secret references in the environment and parsing them.

Runs in the forked child and in --check, never in PID 1 (which only looks
for `candidates.SCHEMES`). It reads references, which are not secret, and
never values. A value is a reference only when it *starts* with a provider's
prefix; anything else is left alone byte for byte. A value with a prefix that
is not valid UTF-8 is an error, not something to pass on. Parsing needs only
a provider's grammar, not its SDK.

Names are bytes: the environment's key is kept as it is (`Reference.name`),
so the secret replaces exactly the variable that held the reference; the
decoded `variable` is only for messages.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from secrets_init import candidates, providers
from secrets_init.files import TEMPFILE

DESTINATION_MARK = "?destination="


@dataclass(frozen=True)
class Reference:
    """One environment variable whose value names a secret."""

    name: bytes  # the environment's key, byte for byte: what the secret replaces
    text: str  # the reference as written, without the ?destination= suffix
    provider: str  # a providers.REGISTRY name
    target: Hashable  # what to fetch; equal targets are fetched once
    json_key: str | None = None
    destination: str | None = None  # None (environment), "tempfile", or an absolute path

    @property
    def variable(self) -> str:
        """The name as messages show it."""
        return display_name(self.name)


@dataclass(frozen=True)
class ResolutionError(Exception):
    """Why one variable cannot get its secret: malformed, not fetched, or unusable.

    Printed as one line, `VARIABLE: reference: cause`; the cause never holds a value.
    """

    variable: str
    reference: str
    cause: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.reference}: {self.cause}"

    @classmethod
    def of(cls, reference: Reference, cause: str) -> ResolutionError:
        return cls(reference.variable, reference.text, cause)


def scan(
    environ: Mapping[bytes, bytes], family: str | None = None
) -> tuple[list[Reference], list[ResolutionError]]:
    """Every reference in `environ` in variable-name order, and every malformed one.

    With `family` set (the compatibility `--provider` option) only that
    family's references count; the others pass through unchanged.
    """
    found: list[Reference] = []
    malformed: list[ResolutionError] = []
    for raw_name in sorted(environ):
        raw_value = environ[raw_name]
        if not raw_value.startswith(candidates.SCHEMES):
            continue
        shown = raw_value.decode("utf-8", "backslashreplace")
        entry = providers.entry_for(shown)
        if entry is None or (family is not None and entry.family != family):
            continue
        try:
            value = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            malformed.append(
                ResolutionError(display_name(raw_name), shown, "reference is not valid UTF-8")
            )
            continue
        try:
            found.append(parse_one(raw_name, value, entry))
        except ResolutionError as error:
            malformed.append(error)
    return found, malformed


def display_name(name: bytes) -> str:
    """A variable's name for messages; bytes that are not UTF-8 are shown as \\xNN."""
    return name.decode("utf-8", "backslashreplace")


def parse_one(name: bytes, value: str, entry: providers.ProviderEntry) -> Reference:
    """The reference in `value`, the value of variable `name`, or why it is malformed."""
    variable = display_name(name)
    text, mark, destination = value.partition(DESTINATION_MARK)
    if mark:
        if "?" in text or not destination:
            raise ResolutionError(
                variable, value, "expected ?destination=tempfile or an absolute path"
            )
        if destination != TEMPFILE and not destination.startswith("/"):
            raise ResolutionError(
                variable,
                value,
                f"destination must be 'tempfile' or an absolute path: {destination!r}",
            )
        if "\0" in destination:
            raise ResolutionError(variable, value, "destination contains a NUL byte")
    elif "?" in text:
        raise ResolutionError(variable, value, "the only query supported is ?destination=")
    try:
        parsed = entry.grammar().parse(text)
    except providers.ReferenceSyntaxError as error:
        raise ResolutionError(
            variable, value, f"malformed {entry.name} reference: {error}"
        ) from None
    return Reference(
        name=name,
        text=text,
        provider=entry.name,
        target=parsed.target,
        json_key=parsed.json_key,
        destination=destination or None,
    )
