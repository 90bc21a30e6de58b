"""Which containers of a pod get a secrets-init reference, and where we could not tell.

A container needs secrets-init when an `env` value is a reference, or an
`env[].valueFrom` / `envFrom` entry brings one from a ConfigMap or Secret.
Whether a value is a reference is decided by `providers.is_reference`, the
same test secrets-init applies when it runs.

When an object cannot be read, the container is counted as needing
secrets-init and a warning says why: secrets-init passes non-references
through unchanged, so injecting is always safe, while skipping would start
the program with unresolved references.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from secrets_init.providers import is_reference
from secrets_init.webhook.cluster import CONFIG_MAP, SECRET, Cluster, ReadError

SECTIONS = ("initContainers", "containers")


@dataclass
class Detection:
    """The names of the containers to wrap, and a warning for each guess."""

    containers: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Reader:
    """Reads each object once per review, and remembers failures as failures."""

    cluster: Cluster
    namespace: str
    seen: dict[tuple[str, str], frozenset[str] | ReadError] = field(default_factory=dict)

    def keys(self, kind: str, name: str) -> frozenset[str]:
        key = (kind, name)
        if key not in self.seen:
            try:
                self.seen[key] = self.cluster.reference_keys(kind, self.namespace, name)
            except ReadError as error:
                self.seen[key] = error
        found = self.seen[key]
        if isinstance(found, ReadError):
            raise found
        return found


def detect(pod: dict[str, Any], namespace: str, cluster: Cluster) -> Detection:
    reader = _Reader(cluster, namespace)
    detection = Detection()
    spec = pod.get("spec") or {}
    for section in SECTIONS:
        for container in spec.get(section) or []:
            if _has_references(container, reader, detection.warnings):
                detection.containers.add(container["name"])
    return detection


@dataclass(frozen=True)
class _Source:
    """Where a variable (or, with `key` None, a set of them) comes from."""

    kind: str
    name: str
    key: str | None
    where: str  # for the warning: "env NAME" or "envFrom"


def _has_references(container: dict[str, Any], reader: _Reader, warnings: list[str]) -> bool:
    """Literal values first, then objects, stopping at the first reference found.

    A container is warned about only when an unreadable object is the reason it
    is injected: when something else already proves it needs secrets-init,
    there is nothing to guess.
    """
    literals = (v.get("value") for v in container.get("env") or [] if "value" in v)
    if any(is_reference(str(value)) for value in literals):
        return True
    guesses = []
    for source in _sources(container):
        try:
            keys = reader.keys(source.kind, source.name)
        except ReadError as error:
            guesses.append(_guess(container.get("name", ""), source, error))
            continue
        if keys if source.key is None else source.key in keys:
            return True
    warnings += guesses
    return bool(guesses)


def _sources(container: dict[str, Any]) -> list[_Source]:
    found = []
    for variable in container.get("env") or []:
        value_from = variable.get("valueFrom") or {}
        for kind, member in ((CONFIG_MAP, "configMapKeyRef"), (SECRET, "secretKeyRef")):
            if ref := value_from.get(member):
                where = f"env {variable.get('name')}"
                found.append(_Source(kind, str(ref.get("name", "")), str(ref.get("key")), where))
    for entry in container.get("envFrom") or []:
        for kind, member in ((CONFIG_MAP, "configMapRef"), (SECRET, "secretRef")):
            if ref := entry.get(member):
                found.append(_Source(kind, str(ref.get("name", "")), None, "envFrom"))
    return found


def _guess(container: str, source: _Source, error: ReadError) -> str:
    """Short: the API server may cut warnings longer than 256 characters."""
    return (
        f"container {container}: {source.where}: cannot read {source.kind} {source.name} "
        f"({error}); secrets-init injected anyway"
    )
