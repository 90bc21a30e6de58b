"""Registry credentials from a pull secret's Docker config, for one registry.

The password never shows in a repr, a log line or an error.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from secrets_init.webhook.imageref import DOCKER_HUB

_HUB_ALIASES = frozenset((DOCKER_HUB, "index.docker.io", "registry-1.docker.io"))


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def for_registry(docker_config: bytes, registry: str) -> Credentials | None:
    """The entry of `{"auths": {...}}` for `registry`, matched as the kubelet does by host."""
    try:
        auths = json.loads(docker_config).get("auths") or {}
    except (ValueError, AttributeError):
        return None
    wanted = _host(registry)
    for key, entry in auths.items():
        if _host(key) != wanted or not isinstance(entry, dict):
            continue
        if entry.get("username") and entry.get("password"):
            return Credentials(str(entry["username"]), str(entry["password"]))
        try:
            user, colon, password = base64.b64decode(entry.get("auth", "")).decode().partition(":")
        except (ValueError, binascii.Error):
            continue
        if colon:
            return Credentials(user, password)
    return None


def _host(key: str) -> str:
    """`https://index.docker.io/v1/` and `docker.io` are one registry; `h:5000/` is `h:5000`."""
    host = key.split("://", 1)[-1].split("/", 1)[0].lower()
    return DOCKER_HUB if host in _HUB_ALIASES else host
