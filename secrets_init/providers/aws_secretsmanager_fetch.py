"""Fetching AWS Secrets Manager secrets.

References without a version go out 20 at a time with BatchGetSecretValue;
that call needs its own IAM permission, which policies written for the
original tool lack, so when it is denied the rest of the fetch uses
GetSecretValue.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Hashable
from typing import Any

from secrets_init.providers import Failure, FetchContext, Outcome, aws_client
from secrets_init.providers.aws_client import DENIED, GLOBAL, UNCLEAR, CallError
from secrets_init.providers.aws_secretsmanager_grammar import SecretsManagerTarget
from secrets_init.providers.pool import Pool

BATCH = 20  # BatchGetSecretValue's limit for SecretIdList
BATCH_PERMISSION = "secretsmanager:BatchGetSecretValue"
PERMISSION = "secretsmanager:GetSecretValue"
_BATCH_DENIED = "batch-denied"
_MAX_PAGES = 10  # a SecretIdList answer fits one page; this only bounds a misbehaving server


def fetch(targets: Collection[Hashable], context: FetchContext) -> dict[Hashable, Outcome]:
    pool = Pool("aws-secretsmanager", context, aws_client.WORKERS)
    wanted = sorted(
        (t for t in targets if isinstance(t, SecretsManagerTarget)),
        key=lambda t: (
            t.partition,
            t.region,
            t.account,
            t.name,
            t.version_stage or "",
            t.version_id or "",
        ),
    )
    groups: dict[tuple[str, str, str], list[SecretsManagerTarget]] = {}
    for target in wanted:
        groups.setdefault((target.partition, target.region, target.account), []).append(target)
    for (_, region, _), members in groups.items():
        batchable = [t for t in members if t.version_stage is None and t.version_id is None]
        for start in range(0, len(batchable), BATCH):
            pool.submit(
                functools.partial(_get_batch, pool, region, batchable[start : start + BATCH])
            )
        _get_each(pool, region, [t for t in members if t not in batchable])
    return pool.wait(targets)


def _get_batch(pool: Pool, region: str, chunk: list[SecretsManagerTarget]) -> None:
    if pool.flagged(_BATCH_DENIED):
        _get_each(pool, region, chunk)
        return
    client = aws_client.client_for(pool, "secretsmanager", region, chunk)
    if client is None:
        return
    ids = {target.arn: target for target in chunk}
    params: dict[str, Any] = {"SecretIdList": list(ids)}
    found: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    try:
        for _ in range(_MAX_PAGES):
            answer = aws_client.call(
                pool,
                client,
                "BatchGetSecretValue",
                subject="secret",
                region=region,
                permission=BATCH_PERMISSION,
                **params,
            )
            found.extend(answer.get("SecretValues") or [])
            errors.extend(answer.get("Errors") or [])
            params["NextToken"] = answer.get("NextToken")
            if not params["NextToken"]:
                break
    except CallError as error:
        if error.kind == DENIED:
            if pool.flag(_BATCH_DENIED):
                pool.debug(
                    f"BatchGetSecretValue denied (needs {BATCH_PERMISSION}); "
                    "using GetSecretValue for the rest of this fetch"
                )
            _get_each(pool, region, chunk)
        elif error.kind != GLOBAL and len(chunk) > 1:
            _get_each(pool, region, chunk)  # find out which secret the answer was about
        else:
            pool.fail(chunk, error.cause)
        return

    for entry in errors:
        target = ids.get(str(entry.get("SecretId")))
        code = str(entry.get("ErrorCode", ""))
        cause, kind = aws_client.describe_code(code, "secret", region, PERMISSION)
        if target is not None and kind != UNCLEAR:
            pool.fail([target], cause)
        # Anything else is asked again alone below, for a precise answer.
    by_arn_name: dict[str, dict[str, Any]] = {}
    by_name: dict[str, dict[str, Any]] = {}
    for entry in found:
        arn, name = entry.get("ARN"), entry.get("Name")
        if isinstance(arn, str) and ":secret:" in arn:
            by_arn_name.setdefault(arn.split(":secret:", 1)[1], entry)
        if isinstance(name, str):
            by_name.setdefault(name, entry)
    leftovers: list[SecretsManagerTarget] = []
    for target in chunk:
        if pool.settled(target):
            continue
        # A full ARN matches the answer's ARN; a bare name matches its Name.
        value = by_arn_name.get(target.name) or by_name.get(target.name)
        if value is None:
            leftovers.append(target)
        else:
            pool.settle([target], _secret_bytes(value))
    _get_each(pool, region, leftovers)


def _get_each(pool: Pool, region: str, targets: list[SecretsManagerTarget]) -> None:
    for target in targets:
        pool.submit(functools.partial(_get_one, pool, region, target))


def _get_one(pool: Pool, region: str, target: SecretsManagerTarget) -> None:
    params = {"SecretId": target.arn}
    if target.version_stage is not None:
        params["VersionStage"] = target.version_stage
    if target.version_id is not None:
        params["VersionId"] = target.version_id
    answer = aws_client.call_for(
        pool,
        target,
        "secretsmanager",
        region,
        "GetSecretValue",
        subject=target.subject,
        permission=PERMISSION,
        **params,
    )
    if answer is not None:
        pool.settle([target], _secret_bytes(answer))


def _secret_bytes(answer: dict[str, Any]) -> Outcome:
    text = answer.get("SecretString")
    if isinstance(text, str):
        # surrogatepass: a lone surrogate from a JSON escape becomes bytes
        # that the UTF-8 check later refuses with a clear message.
        return text.encode("utf-8", "surrogatepass")
    blob = answer.get("SecretBinary")
    if isinstance(blob, bytes | bytearray):
        return bytes(blob)
    return Failure("the secret version has no value")
