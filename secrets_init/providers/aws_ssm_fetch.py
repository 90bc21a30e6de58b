"""Fetching AWS Systems Manager Parameter Store parameters.

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
from typing import Any

from secrets_init.providers import Failure, FetchContext, Outcome, aws_client
from secrets_init.providers.aws_client import GLOBAL, CallError
from secrets_init.providers.aws_ssm_grammar import ParameterStoreTarget
from secrets_init.providers.pool import Pool

BATCH = 10  # GetParameters' limit for Names
BATCH_PERMISSION = "ssm:GetParameters"
PERMISSION = "ssm:GetParameter"


def fetch(targets: Collection[Hashable], context: FetchContext) -> dict[Hashable, Outcome]:
    pool = Pool("aws-ssm", context, aws_client.WORKERS)
    wanted = sorted(
        (t for t in targets if isinstance(t, ParameterStoreTarget)),
        key=lambda t: (t.partition, t.region, t.account, t.key, t.selector or ""),
    )
    groups: dict[tuple[str, str, str], list[ParameterStoreTarget]] = {}
    for target in wanted:
        groups.setdefault((target.partition, target.region, target.account), []).append(target)
    for (_, region, _), members in groups.items():
        for chunk in spread(members, BATCH):
            pool.submit(functools.partial(_get_batch, pool, region, chunk))
    return pool.wait(targets)


def spread(targets: list[ParameterStoreTarget], size: int) -> list[list[ParameterStoreTarget]]:
    """As few chunks of at most `size` as possible, none asking for one parameter twice.

    With n targets and a parameter asked for at most m times, that is
    max(ceil(n / size), m) chunks: deal the targets, grouped by parameter
    (most-asked first), round-robin into that many chunks, so the copies of
    one parameter fall into different chunks.
    """
    by_key: dict[str, list[ParameterStoreTarget]] = {}
    for target in targets:
        by_key.setdefault(target.key, []).append(target)
    if not by_key:
        return []
    count = max(-(-len(targets) // size), max(len(group) for group in by_key.values()))
    chunks: list[list[ParameterStoreTarget]] = [[] for _ in range(count)]
    dealt = [t for group in sorted(by_key.values(), key=len, reverse=True) for t in group]
    for index, target in enumerate(dealt):
        chunks[index % count].append(target)
    return chunks


def _get_batch(pool: Pool, region: str, chunk: list[ParameterStoreTarget]) -> None:
    client = aws_client.client_for(pool, "ssm", region, chunk)
    if client is None:
        return
    names = {target.request_name: target for target in chunk}
    try:
        answer = aws_client.call(
            pool,
            client,
            "GetParameters",
            subject="parameter",
            region=region,
            permission=BATCH_PERMISSION,
            Names=list(names),
            WithDecryption=True,
        )
    except CallError as error:
        if error.kind == GLOBAL:
            pool.fail(chunk, error.cause)
        else:
            # Denied (perhaps only ssm:GetParameter is granted), a KMS key, or
            # a bad name: one by one, each variable gets its own answer.
            _get_each(pool, region, chunk)
        return

    for requested in answer.get("InvalidParameters") or []:
        target = names.get(str(requested))
        if target is not None:
            pool.fail([target], f"{target.subject} not found in {region}")
    found: dict[str, dict[str, Any]] = {}
    for parameter in answer.get("Parameters") or []:
        name = parameter.get("Name")
        if isinstance(name, str):
            found.setdefault(_key(name), parameter)
    leftovers = []
    for target in chunk:
        if pool.settled(target):
            continue
        parameter = found.get(target.key)
        if parameter is None or not _serves(parameter, target):
            leftovers.append(target)
        else:
            pool.settle([target], _parameter_bytes(parameter))
    _get_each(pool, region, leftovers)


def _key(name: str) -> str:
    """A parameter's identity from an answer's Name, which may be a name or an ARN."""
    if name.startswith("arn:") and ":parameter" in name:
        name = name.split(":parameter", 1)[1]
    return name.lstrip("/")


def _serves(parameter: dict[str, Any], target: ParameterStoreTarget) -> bool:
    """Whether an answer is for the target's selector, as far as the answer says."""
    if target.selector is None:
        return True
    selector = parameter.get("Selector")
    if isinstance(selector, str) and selector.lstrip(":") != target.selector:
        return False
    version = parameter.get("Version")
    return not (
        target.version is not None and isinstance(version, int) and version != target.version
    )


def _get_each(pool: Pool, region: str, targets: list[ParameterStoreTarget]) -> None:
    for target in targets:
        pool.submit(functools.partial(_get_one, pool, region, target))


def _get_one(pool: Pool, region: str, target: ParameterStoreTarget) -> None:
    answer = aws_client.call_for(
        pool,
        target,
        "ssm",
        region,
        "GetParameter",
        subject=target.subject,
        permission=PERMISSION,
        Name=target.request_name,
        WithDecryption=True,
    )
    if answer is None:
        return
    parameter = answer.get("Parameter")
    if not isinstance(parameter, dict) or not _serves(parameter, target):
        pool.fail([target], f"AWS answered for another {target.subject}")
        return
    pool.settle([target], _parameter_bytes(parameter))


def _parameter_bytes(parameter: dict[str, Any]) -> Outcome:
    # A StringList's Value is its comma-joined text, passed on as stored.
    value = parameter.get("Value")
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return Failure("the parameter has no value")
