"""What the webhook asks of the Kubernetes API, as an interface.

Two questions, and neither answer holds a ConfigMap's or Secret's values:
which keys of an object hold secrets-init references, and of which provider
family (the values are looked at where they are read, then dropped), and the
registry credentials of a pull secret (used in an Authorization header, never
shown). `kube.py` asks
the API server; tests may answer from memory.
"""

from __future__ import annotations

from typing import Protocol

CONFIG_MAP = "ConfigMap"
SECRET = "Secret"  # noqa: S105 (a kind, not a password)


class ReadError(Exception):
    """An object could not be read; `str()` says why (a status and reason, never a value)."""

    def __init__(self, cause: str, status: int | None = None) -> None:
        super().__init__(cause)
        self.status = status


class Cluster(Protocol):
    def reference_families(self, kind: str, namespace: str, name: str) -> dict[str, str]:
        """Each key of a ConfigMap or Secret whose value is a reference, with the reference's
        provider family (what `lay` is given); raises ReadError."""
        ...

    def docker_config(self, namespace: str, name: str) -> bytes:
        """A pull secret's `.dockerconfigjson` (or legacy `.dockercfg`); raises ReadError."""
        ...
