"""AWS Secrets Manager references: `arn:<partition>:secretsmanager:` and what they ask for.

The reference is the secret's ARN, optionally followed by the three parts
ECS task definitions use, each of which may be empty:

    arn:aws:secretsmanager:<region>:<account>:secret:<name>[:<json-key>[:<version-stage>[:<version-id>]]]
"""

from __future__ import annotations

from dataclasses import dataclass

from secrets_init.providers import Parsed, ReferenceSyntaxError
from secrets_init.providers.aws_arn import split_arn

SHAPE = (
    "expected arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME"
    "[:JSON-KEY[:VERSION-STAGE[:VERSION-ID]]]"
)

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_NAME_CHARS = frozenset(_LOWER + _LOWER.upper() + "0123456789" + "/_+=.@-")
_LABEL_CHARS = frozenset(chr(c) for c in range(33, 127)) - {":"}


@dataclass(frozen=True)
class SecretsManagerTarget:
    """One secret version to fetch; equal targets are fetched once."""

    partition: str
    region: str
    account: str
    name: str  # as written: the full name with AWS's 6-character suffix, or without
    version_stage: str | None = None
    version_id: str | None = None

    @property
    def arn(self) -> str:
        """The secret's ARN, complete or partial, as AWS accepts it for SecretId."""
        return (
            f"arn:{self.partition}:secretsmanager:{self.region}:{self.account}:secret:{self.name}"
        )

    @property
    def subject(self) -> str:
        """How causes name what was asked for."""
        if self.version_id is not None:
            return f"secret (version id {self.version_id})"
        if self.version_stage is not None:
            return f"secret (version stage {self.version_stage})"
        return "secret"


def parse(text: str) -> Parsed:
    partition, region, account, resource = split_arn(text, "secretsmanager", SHAPE)
    kind, colon, rest = resource.partition(":")
    if kind != "secret" or not colon:
        raise ReferenceSyntaxError("missing 'secret:' after the account")
    name, *parts = rest.split(":")
    if not name:
        raise ReferenceSyntaxError("empty secret name")
    if not set(name) <= _NAME_CHARS or len(name) > 512:
        raise ReferenceSyntaxError(
            "a secret name has at most 512 letters, digits and /_+=.@- characters"
        )
    if len(parts) > 3:
        raise ReferenceSyntaxError(
            "too many ':' parts after the secret name (at most JSON-KEY:VERSION-STAGE:VERSION-ID)"
        )
    json_key, stage, version_id = (*parts, "", "", "")[:3]
    for label, value, longest in (("version stage", stage, 256), ("version id", version_id, 64)):
        if not set(value) <= _LABEL_CHARS or len(value) > longest:
            raise ReferenceSyntaxError(
                f"a {label} has at most {longest} printable characters, no spaces"
            )
    target = SecretsManagerTarget(
        partition, region, account, name, stage or None, version_id or None
    )
    return Parsed(target, json_key or None)
