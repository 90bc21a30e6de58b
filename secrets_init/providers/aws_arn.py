"""The ARN grammar both AWS providers share: partition, region and account.

The region comes from the ARN, so AWS_REGION is not needed; a malformed
region or account is refused here rather than sent to an endpoint that does
not exist.
"""

from __future__ import annotations

from secrets_init.providers import AWS_PARTITIONS, ReferenceSyntaxError

_DIGITS = frozenset("0123456789")
_REGION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def split_arn(text: str, service: str, shape: str) -> tuple[str, str, str, str]:
    """Partition, region, account and resource of `text`, an ARN of `service`.

    `shape` is the provider's whole reference syntax, shown when the text is
    not an ARN of that service at all.
    """
    parts = text.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != service:
        raise ReferenceSyntaxError(shape)
    _, partition, _, region, account, resource = parts
    if partition not in AWS_PARTITIONS:
        raise ReferenceSyntaxError(f"partition must be one of {', '.join(AWS_PARTITIONS)}")
    if not region:
        raise ReferenceSyntaxError(f"missing region; {shape}")
    pieces = region.split("-")
    if not set(region) <= _REGION_CHARS or len(pieces) < 2 or "" in pieces or len(region) > 32:
        raise ReferenceSyntaxError(f"{region!r} is not an AWS region name such as us-east-1")
    if not account:
        raise ReferenceSyntaxError(f"missing account; {shape}")
    if len(account) != 12 or not set(account) <= _DIGITS:
        raise ReferenceSyntaxError("the account must be 12 digits")
    return partition, region, account, resource
