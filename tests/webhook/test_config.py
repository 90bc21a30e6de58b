"""The webhook's options and their SECRETS_INIT_WEBHOOK_* twins."""

from __future__ import annotations

import pytest

from secrets_init.webhook.config import OptionsError, parse

REQUIRED = {
    "SECRETS_INIT_WEBHOOK_TLS_CERT_FILE": "/tls/tls.crt",
    "SECRETS_INIT_WEBHOOK_TLS_KEY_FILE": "/tls/tls.key",
    "SECRETS_INIT_WEBHOOK_IMAGE": "ghcr.io/x/secrets-init:1",
}


def test_defaults() -> None:
    options = parse([], REQUIRED)
    assert (options.host, options.port) == ("0.0.0.0", 8443)
    assert options.image == "ghcr.io/x/secrets-init:1"
    assert options.exclude_namespaces == ()
    assert options.platform == "linux/amd64"
    assert options.tag_cache_seconds == 300


def test_twins_and_the_command_line_wins() -> None:
    env = {
        **REQUIRED,
        "SECRETS_INIT_WEBHOOK_LISTEN": "127.0.0.1:9443",
        "SECRETS_INIT_WEBHOOK_EXCLUDE_NAMESPACES": "a,b,,c",
        "SECRETS_INIT_WEBHOOK_PLATFORM": "linux/arm64/v8",
        "SECRETS_INIT_WEBHOOK_TAG_CACHE_SECONDS": "60",
    }
    options = parse(["--image", "other:2", "--listen", "[::1]:8443"], env)
    assert options.image == "other:2"
    assert (options.host, options.port) == ("::1", 8443)
    assert options.exclude_namespaces == ("a", "b", "c")
    assert options.platform == "linux/arm64/v8"
    assert options.tag_cache_seconds == 60


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listen", "8443"], "--listen: expected HOST:PORT"),
        (["--listen", "h:99999"], "--listen: expected HOST:PORT"),
        (["--platform", "amd64"], "--platform: expected OS/ARCH"),
        (["--registry-timeout", "soon"], "--registry-timeout: not a number of seconds"),
        (["--api-timeout", "-1"], "--api-timeout: must not be negative"),
        (["--log-level", "loud"], "--log-level"),
    ],
)
def test_bad_values(argv: list[str], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        parse(argv, REQUIRED)
