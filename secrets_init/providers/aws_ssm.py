"""AWS Systems Manager Parameter Store: `arn:<partition>:ssm:` references.

`parse` is standard library only: it runs in PID 1. `fetch` runs in the
forked child and is the only place boto3 is imported.

    arn:aws:ssm:<region>:<account>:parameter/<path/name>[:<version>|:<label>]

References go out 10 at a time with GetParameters (SecureString decrypted).
GetParameters accepts `name:version` and `name:label` selectors but answers
with the bare name, and (in emulators) without saying which selector it
served; so one call never asks for the same parameter twice, and each answer
maps back to exactly one reference. When a batch is refused, its references
are asked one by one with GetParameter, which also pins the error on the
right variable (and is the permission the original tool needed).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from secrets_init import providers
from secrets_init.providers.aws_secrets import split_arn

if TYPE_CHECKING:
    from secrets_init.providers.aws_client import Run

SHAPE = "expected arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME[:VERSION-OR-LABEL]"
BATCH = 10  # GetParameters' limit for Names
BATCH_PERMISSION = "ssm:GetParameters"
PERMISSION = "ssm:GetParameter"

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = frozenset("0123456789")
_CHARS = frozenset(_LOWER + _LOWER.upper() + "0123456789" + "_.-")


@dataclass(frozen=True)
class ParameterTarget:
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
    def subject(self) -> str:
        if self.selector is None:
            return "parameter"
        kind = "version" if set(self.selector) <= _DIGITS else "label"
        return f"parameter ({kind} {self.selector})"


def parse(text: str) -> providers.Parsed:
    partition, region, account, resource = split_arn(text, "ssm", SHAPE)
    if not resource.startswith("parameter/"):
        raise providers.ReferenceSyntaxError("missing 'parameter/' after the account")
    name, *selectors = resource[len("parameter") :].split(":")
    if len(selectors) > 1:
        raise providers.ReferenceSyntaxError(
            "too many ':' parts after the parameter name (at most one version or label)"
        )
    if name == "/":
        raise providers.ReferenceSyntaxError("empty parameter name")
    segments = name[1:].split("/")
    if "" in segments:
        raise providers.ReferenceSyntaxError(
            "empty part in the parameter name ('//' or a trailing '/')"
        )
    if not set(name) - {"/"} <= _CHARS or len(name) > 1011:
        raise providers.ReferenceSyntaxError(
            "a parameter name has at most 1011 letters, digits and _.-/ characters"
        )
    selector = selectors[0] if selectors else None
    if selector is not None and (
        not selector or not set(selector) <= _CHARS or len(selector) > 100
    ):
        raise providers.ReferenceSyntaxError(
            "after the name, ':' must be followed by a version number or a label "
            "(up to 100 letters, digits and _.- characters)"
        )
    return providers.Parsed(ParameterTarget(partition, region, account, name, selector))


def fetch(
    targets: Collection[Hashable], context: providers.FetchContext
) -> dict[Hashable, bytes | providers.Failure]:
    from secrets_init.providers import aws_client

    run = aws_client.Run("aws-ssm", context)  # before the import, which takes part of the time
    import boto3  # noqa: F401 - here and only here: a missing SDK is reported per reference

    wanted = sorted(
        (t for t in targets if isinstance(t, ParameterTarget)),
        key=lambda t: (t.partition, t.region, t.account, t.key, t.selector or ""),
    )
    groups: dict[tuple[str, str, str], list[ParameterTarget]] = {}
    for target in wanted:
        groups.setdefault((target.partition, target.region, target.account), []).append(target)
    for (_, region, _), members in groups.items():
        for chunk in spread(members, BATCH):
            run.submit(functools.partial(_batch, run, region, chunk))
    return run.wait(targets)


def spread(targets: list[ParameterTarget], size: int) -> list[list[ParameterTarget]]:
    """As few chunks of at most `size` as possible, none asking for one parameter twice.

    With n targets and a parameter asked for at most m times, that is
    max(ceil(n / size), m) chunks: deal the targets, grouped by parameter
    (most-asked first), round-robin into that many chunks, so the copies of
    one parameter fall into different chunks.
    """
    by_key: dict[str, list[ParameterTarget]] = {}
    for target in targets:
        by_key.setdefault(target.key, []).append(target)
    if not by_key:
        return []
    count = max(-(-len(targets) // size), max(len(group) for group in by_key.values()))
    chunks: list[list[ParameterTarget]] = [[] for _ in range(count)]
    dealt = [t for group in sorted(by_key.values(), key=len, reverse=True) for t in group]
    for index, target in enumerate(dealt):
        chunks[index % count].append(target)
    return chunks


def _batch(run: Run, region: str, chunk: list[ParameterTarget]) -> None:
    from secrets_init.providers.aws_client import GLOBAL, CallFailed

    client = run.client_or_fail("ssm", region, chunk)
    if client is None:
        return
    run.stage(chunk, f"waiting for {client.meta.endpoint_url}")
    names = {target.request_name: target for target in chunk}
    try:
        answer = run.call(
            client,
            "GetParameters",
            subject="parameter",
            region=region,
            permission=BATCH_PERMISSION,
            Names=list(names),
            WithDecryption=True,
        )
    except CallFailed as failed:
        if failed.kind == GLOBAL:
            run.fail(chunk, failed.cause)
        else:
            # Denied (perhaps only ssm:GetParameter is granted), a KMS key, or
            # a bad name: one by one, each variable gets its own answer.
            _each(run, region, chunk)
        return

    for requested in answer.get("InvalidParameters") or []:
        target = names.get(str(requested))
        if target is not None:
            run.settle(target, providers.Failure(f"{target.subject} not found in {region}"))
    found: dict[str, dict[str, Any]] = {}
    for parameter in answer.get("Parameters") or []:
        name = parameter.get("Name")
        if isinstance(name, str):
            found.setdefault(_key(name), parameter)
    leftovers = []
    for target in chunk:
        if run.settled(target):
            continue
        parameter = found.get(target.key)
        if parameter is None or not _serves(parameter, target):
            leftovers.append(target)
        else:
            run.settle(target, _value(parameter))
    _each(run, region, leftovers)


def _key(name: str) -> str:
    """A parameter's identity from an answer's Name, which may be a name or an ARN."""
    if name.startswith("arn:") and ":parameter" in name:
        name = name.split(":parameter", 1)[1]
    return name.lstrip("/")


def _serves(parameter: dict[str, Any], target: ParameterTarget) -> bool:
    """Whether an answer is for the target's selector, as far as the answer says."""
    if target.selector is None:
        return True
    selector = parameter.get("Selector")
    if isinstance(selector, str) and selector.lstrip(":") != target.selector:
        return False
    version = parameter.get("Version")
    return not (
        set(target.selector) <= _DIGITS
        and isinstance(version, int)
        and version != int(target.selector)
    )


def _each(run: Run, region: str, targets: list[ParameterTarget]) -> None:
    for target in targets:
        run.submit(functools.partial(_single, run, region, target))


def _single(run: Run, region: str, target: ParameterTarget) -> None:
    from secrets_init.providers.aws_client import CallFailed

    client = run.client_or_fail("ssm", region, [target])
    if client is None:
        return
    run.stage([target], f"waiting for {client.meta.endpoint_url}")
    try:
        answer = run.call(
            client,
            "GetParameter",
            subject=target.subject,
            region=region,
            permission=PERMISSION,
            Name=target.request_name,
            WithDecryption=True,
        )
    except CallFailed as failed:
        run.fail([target], failed.cause)
        return
    parameter = answer.get("Parameter")
    if not isinstance(parameter, dict) or not _serves(parameter, target):
        run.fail([target], f"AWS answered for another {target.subject}")
        return
    run.settle(target, _value(parameter))


def _value(parameter: dict[str, Any]) -> bytes | providers.Failure:
    # A StringList's Value is its comma-joined text, passed on as stored.
    value = parameter.get("Value")
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return providers.Failure("the parameter has no value")
