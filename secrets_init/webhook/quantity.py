"""Kubernetes memory quantities (`512Mi`, `1G`, `1.5Gi`, `268435456`), enough to add to one."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+)?([a-zA-Z]*)$")
MI = 2**20


class QuantityError(ValueError):
    """Not a quantity Kubernetes would accept for memory."""


def parse_bytes(text: str) -> int:
    match = _QUANTITY.match(text.strip())
    if match is None or (match.group(3) and match.group(2)) or match.group(3) not in _SUFFIXES:
        raise QuantityError(f"not a memory quantity: {text!r}")
    try:
        number = Decimal(match.group(1) + (match.group(2) or ""))
    except InvalidOperation:
        raise QuantityError(f"not a memory quantity: {text!r}") from None
    value = number * _SUFFIXES[match.group(3)]
    return int(value.to_integral_value(rounding="ROUND_CEILING"))


def plus(text: str, extra_bytes: int) -> str:
    """`text` + `extra_bytes`, in Mi when that is exact, else in bytes."""
    total = parse_bytes(text) + extra_bytes
    return f"{total // MI}Mi" if total % MI == 0 else str(total)
