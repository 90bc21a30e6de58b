"""AWS Systems Manager Parameter Store references: `arn:<partition>:ssm:` and what they ask for.

arn:aws:ssm:<region>:<account>:parameter/<path/name>[:<version>|:<label>]
"""

from __future__ import annotations

from dataclasses import dataclass

from secrets_init.providers import Parsed, ReferenceSyntaxError
from secrets_init.providers.aws_arn import split_arn

SHAPE = "expected arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME[:VERSION-OR-LABEL]"

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_CHARS = frozenset(_LOWER + _LOWER.upper() + "0123456789" + "_.-")


@dataclass(frozen=True)
class ParameterStoreTarget:
    """One parameter (at one version or label) to fetch; equal targets are fetched once."""

    partition: str
    region: str
    account: str
    name: str  # fully qualified, with its leading '/': '/app/db'
    selector: str | None = None  # a version number or a label

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:ssm:{self.region}:{self.account}:parameter{self.name}"

    @property
    def request_name(self) -> str:
        """What GetParameter(s) is asked for: the ARN, which also reaches shared parameters."""
        return self.arn if self.selector is None else f"{self.arn}:{self.selector}"

    @property
    def key(self) -> str:
        """The parameter's identity: AWS treats '/name' and 'name' as the same parameter."""
        return self.name.lstrip("/")

    @property
    def version(self) -> int | None:
        """The selector when it is a version number; None for a label or no selector."""
        if self.selector is not None and self.selector.isascii() and self.selector.isdigit():
            return int(self.selector)
        return None

    @property
    def subject(self) -> str:
        """How causes name what was asked for."""
        if self.selector is None:
            return "parameter"
        kind = "label" if self.version is None else "version"
        return f"parameter ({kind} {self.selector})"


def parse(text: str) -> Parsed:
    partition, region, account, resource = split_arn(text, "ssm", SHAPE)
    if not resource.startswith("parameter/"):
        raise ReferenceSyntaxError("missing 'parameter/' after the account")
    name, *selectors = resource[len("parameter") :].split(":")
    if len(selectors) > 1:
        raise ReferenceSyntaxError(
            "too many ':' parts after the parameter name (at most one version or label)"
        )
    if name == "/":
        raise ReferenceSyntaxError("empty parameter name")
    segments = name[1:].split("/")
    if "" in segments:
        raise ReferenceSyntaxError("empty part in the parameter name ('//' or a trailing '/')")
    if not set(name) - {"/"} <= _CHARS or len(name) > 1011:
        raise ReferenceSyntaxError(
            "a parameter name has at most 1011 letters, digits and _.-/ characters"
        )
    selector = selectors[0] if selectors else None
    if selector is not None and (
        not selector or not set(selector) <= _CHARS or len(selector) > 100
    ):
        raise ReferenceSyntaxError(
            "after the name, ':' must be followed by a version number or a label "
            "(up to 100 letters, digits and _.- characters)"
        )
    return Parsed(ParameterStoreTarget(partition, region, account, name, selector))
