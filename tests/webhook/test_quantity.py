"""Memory quantities as Kubernetes writes them, compared with the kubernetes client's parser."""

from __future__ import annotations

import pytest
from kubernetes.utils import parse_quantity

from secrets_init.webhook.quantity import QuantityError, parse_bytes, plus


@pytest.mark.parametrize(
    "text",
    ["512Mi", "1Gi", "1.5Gi", "500M", "1e9", "1E3", "1000000", "129e6", "64Ki", "0.5Gi", "1k"],
)
def test_parse_bytes_agrees_with_the_client(text: str) -> None:
    assert parse_bytes(text) == int(parse_quantity(text))


def test_plus() -> None:
    assert plus("512Mi", 96 * 2**20) == "608Mi"
    assert plus("500M", 1) == "500000001"


@pytest.mark.parametrize("text", ["", "Mi", "12Xi", "1e3Mi", "abc"])
def test_malformed(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_bytes(text)
