"""AWS Secrets Manager: `arn:<partition>:secretsmanager:` references.

`parse` is standard library only: it runs in PID 1. `fetch` runs in the
forked child and is the only place boto3 is imported.

The reference is the secret's ARN, optionally followed by the three parts
ECS task definitions use, each of which may be empty:

    arn:aws:secretsmanager:<region>:<account>:secret:<name>[:<json-key>[:<version-stage>[:<version-id>]]]

The region comes from the ARN, so AWS_REGION is not needed. References
without a version go out 20 at a time with BatchGetSecretValue; that call
needs its own IAM permission, which policies written for the original tool
lack, so when it is denied the rest of the run uses GetSecretValue.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from secrets_init import providers

if TYPE_CHECKING:
    from secrets_init.providers.aws_client import Run

PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
SHAPE = (
    "expected arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME"
    "[:JSON-KEY[:VERSION-STAGE[:VERSION-ID]]]"
)
BATCH = 20  # BatchGetSecretValue's limit for SecretIdList
BATCH_PERMISSION = "secretsmanager:BatchGetSecretValue"
PERMISSION = "secretsmanager:GetSecretValue"
_BATCH_DENIED = "batch-denied"
_MAX_PAGES = 10  # a SecretIdList answer fits one page; this only bounds a misbehaving server

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = frozenset("0123456789")
_REGION_CHARS = frozenset(_LOWER + "0123456789-")
_NAME_CHARS = frozenset(_LOWER + _LOWER.upper() + "0123456789" + "/_+=.@-")
_LABEL_CHARS = frozenset(chr(c) for c in range(33, 127)) - {":"}


@dataclass(frozen=True)
class SecretTarget:
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


def parse(text: str) -> providers.Parsed:
    partition, region, account, resource = split_arn(text, "secretsmanager", SHAPE)
    kind, colon, rest = resource.partition(":")
    if kind != "secret" or not colon:
        raise providers.ReferenceSyntaxError("missing 'secret:' after the account")
    name, *parts = rest.split(":")
    if not name:
        raise providers.ReferenceSyntaxError("empty secret name")
    if not set(name) <= _NAME_CHARS or len(name) > 512:
        raise providers.ReferenceSyntaxError(
            "a secret name has at most 512 letters, digits and /_+=.@- characters"
        )
    if len(parts) > 3:
        raise providers.ReferenceSyntaxError(
            "too many ':' parts after the secret name (at most JSON-KEY:VERSION-STAGE:VERSION-ID)"
        )
    json_key, stage, version_id = (*parts, "", "", "")[:3]
    for label, value, longest in (("version stage", stage, 256), ("version id", version_id, 64)):
        if not set(value) <= _LABEL_CHARS or len(value) > longest:
            raise providers.ReferenceSyntaxError(
                f"a {label} has at most {longest} printable characters, no spaces"
            )
    target = SecretTarget(partition, region, account, name, stage or None, version_id or None)
    return providers.Parsed(target, json_key or None)


def split_arn(text: str, service: str, shape: str) -> tuple[str, str, str, str]:
    """Partition, region, account and resource of an AWS ARN; shared with Parameter Store."""
    parts = text.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != service:
        raise providers.ReferenceSyntaxError(shape)
    _, partition, _, region, account, resource = parts
    if partition not in PARTITIONS:
        raise providers.ReferenceSyntaxError(f"partition must be one of {', '.join(PARTITIONS)}")
    if not region:
        raise providers.ReferenceSyntaxError(f"missing region; {shape}")
    pieces = region.split("-")
    if not set(region) <= _REGION_CHARS or len(pieces) < 2 or "" in pieces or len(region) > 32:
        raise providers.ReferenceSyntaxError(
            f"{region!r} is not an AWS region name such as us-east-1"
        )
    if not account:
        raise providers.ReferenceSyntaxError(f"missing account; {shape}")
    if len(account) != 12 or not set(account) <= _DIGITS:
        raise providers.ReferenceSyntaxError("the account must be 12 digits")
    return partition, region, account, resource


def fetch(
    targets: Collection[Hashable], context: providers.FetchContext
) -> dict[Hashable, bytes | providers.Failure]:
    from secrets_init.providers import aws_client

    run = aws_client.Run(
        "aws-secretsmanager", context
    )  # before the import, which takes part of the time
    import boto3  # noqa: F401 - here and only here: a missing SDK is reported per reference

    wanted = sorted(
        (t for t in targets if isinstance(t, SecretTarget)),
        key=lambda t: (
            t.partition,
            t.region,
            t.account,
            t.name,
            t.version_stage or "",
            t.version_id or "",
        ),
    )
    groups: dict[tuple[str, str, str], list[SecretTarget]] = {}
    for target in wanted:
        groups.setdefault((target.partition, target.region, target.account), []).append(target)
    for (_, region, _), members in groups.items():
        batchable = [t for t in members if t.version_stage is None and t.version_id is None]
        for start in range(0, len(batchable), BATCH):
            run.submit(functools.partial(_batch, run, region, batchable[start : start + BATCH]))
        _each(run, region, [t for t in members if t not in batchable])
    return run.wait(targets)


def _batch(run: Run, region: str, chunk: list[SecretTarget]) -> None:
    from secrets_init.providers.aws_client import DENIED, GLOBAL, UNCLEAR, CallFailed, describe_code

    if _BATCH_DENIED in run.flags:
        _each(run, region, chunk)
        return
    client = run.client_or_fail("secretsmanager", region, chunk)
    if client is None:
        return
    run.stage(chunk, f"waiting for {client.meta.endpoint_url}")
    ids = {target.arn: target for target in chunk}
    params: dict[str, Any] = {"SecretIdList": list(ids)}
    values: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    try:
        for _ in range(_MAX_PAGES):
            answer = run.call(
                client,
                "BatchGetSecretValue",
                subject="secret",
                region=region,
                permission=BATCH_PERMISSION,
                **params,
            )
            values.extend(answer.get("SecretValues") or [])
            errors.extend(answer.get("Errors") or [])
            params["NextToken"] = answer.get("NextToken")
            if not params["NextToken"]:
                break
    except CallFailed as failed:
        if failed.kind == DENIED:
            if run.flag(_BATCH_DENIED):
                run.debug(
                    f"BatchGetSecretValue denied (needs {BATCH_PERMISSION}); "
                    "using GetSecretValue for the rest of this run"
                )
            _each(run, region, chunk)
        elif failed.kind != GLOBAL and len(chunk) > 1:
            _each(run, region, chunk)  # find out which secret the answer was about
        else:
            run.fail(chunk, failed.cause)
        return

    for entry in errors:
        target = ids.get(str(entry.get("SecretId")))
        cause, kind = describe_code(str(entry.get("ErrorCode", "")), "secret", region, PERMISSION)
        if target is not None and kind != UNCLEAR:
            run.settle(target, providers.Failure(cause))
        # Anything else is asked again alone below, for a precise answer.
    by_arn_name: dict[str, dict[str, Any]] = {}
    by_name: dict[str, dict[str, Any]] = {}
    for entry in values:
        arn, name = entry.get("ARN"), entry.get("Name")
        if isinstance(arn, str) and ":secret:" in arn:
            by_arn_name.setdefault(arn.split(":secret:", 1)[1], entry)
        if isinstance(name, str):
            by_name.setdefault(name, entry)
    leftovers = []
    for target in chunk:
        if run.settled(target):
            continue
        # A full ARN matches the answer's ARN; a bare name matches its Name.
        found = by_arn_name.get(target.name) or by_name.get(target.name)
        if found is None:
            leftovers.append(target)
        else:
            run.settle(target, _value(found))
    _each(run, region, leftovers)


def _each(run: Run, region: str, targets: list[SecretTarget]) -> None:
    for target in targets:
        run.submit(functools.partial(_single, run, region, target))


def _single(run: Run, region: str, target: SecretTarget) -> None:
    from secrets_init.providers.aws_client import CallFailed

    client = run.client_or_fail("secretsmanager", region, [target])
    if client is None:
        return
    run.stage([target], f"waiting for {client.meta.endpoint_url}")
    params = {"SecretId": target.arn}
    if target.version_stage is not None:
        params["VersionStage"] = target.version_stage
    if target.version_id is not None:
        params["VersionId"] = target.version_id
    try:
        answer = run.call(
            client,
            "GetSecretValue",
            subject=target.subject,
            region=region,
            permission=PERMISSION,
            **params,
        )
    except CallFailed as failed:
        run.fail([target], failed.cause)
        return
    run.settle(target, _value(answer))


def _value(answer: dict[str, Any]) -> bytes | providers.Failure:
    text = answer.get("SecretString")
    if isinstance(text, str):
        # surrogatepass: a lone surrogate from a JSON escape becomes bytes
        # that the UTF-8 check later refuses with a clear message.
        return text.encode("utf-8", "surrogatepass")
    blob = answer.get("SecretBinary")
    if isinstance(blob, bytes | bytearray):
        return bytes(blob)
    return providers.Failure("the secret version has no value")
