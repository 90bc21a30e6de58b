"""Which containers of a pod get a secrets-init reference, of which provider families,
and where we could not tell.

A container needs secrets-init when an `env` value is a reference, or an
`env[].valueFrom` / `envFrom` entry brings one from a ConfigMap or Secret.
Whether a value is a reference, and of which family, is decided by
`providers.entry_for`, the same test secrets-init applies when it runs. The
families decide what the initContainer lays, so every value is looked at.

When an object cannot be read, the container is counted as needing
secrets-init with every family, and a warning says why: secrets-init passes
non-references through unchanged, so injecting is always safe, while skipping
would start the program with unresolved references, and the unread values may
hold a reference of any family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from secrets_init.providers import FAMILIES, entry_for
from secrets_init.webhook.cluster import CONFIG_MAP, SECRET, Cluster, ReadError

SECTIONS = ("initContainers", "containers")


@dataclass
class Detection:
    """The containers to wrap (name -> the families they reference), a warning for each guess."""

    containers: dict[str, frozenset[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Reader:
    """Reads each object once per review, and remembers failures as failures."""

    cluster: Cluster
    namespace: str
    seen: dict[tuple[str, str], dict[str, str] | ReadError] = field(default_factory=dict)

    def families(self, kind: str, name: str) -> dict[str, str]:
        key = (kind, name)
        if key not in self.seen:
            try:
                self.seen[key] = self.cluster.reference_families(kind, self.namespace, name)
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
            families = _families(container, reader, detection.warnings)
            if families is not None:
                detection.containers[container["name"]] = families
    return detection


@dataclass(frozen=True)
class _Source:
    """Where a variable (or, with `key` None, a set of them) comes from."""

    kind: str
    name: str
    key: str | None
    where: str  # for the warning: "env NAME" or "envFrom"


def _families(
    container: dict[str, Any], reader: _Reader, warnings: list[str]
) -> frozenset[str] | None:
    """The families the container's references belong to; None when it has none.

    Every object is read, since any may add a family; an unreadable one stands
    for every family. Each unreadable object that changes the answer is warned
    about, saying whether it is the reason the container is injected at all.
    """
    found: set[str] = set()
    for variable in container.get("env") or []:
        if "value" in variable and (entry := entry_for(str(variable["value"]))) is not None:
            found.add(entry.family)
    unread = []
    for source in _sources(container):
        try:
            families = reader.families(source.kind, source.name)
        except ReadError as error:
            unread.append((source, error))
            continue
        if source.key is None:
            found.update(families.values())
        elif source.key in families:
            found.add(families[source.key])
    if unread and not found >= set(FAMILIES):
        name = container.get("name", "")
        warnings += [_guess(name, source, error, decides=not found) for source, error in unread]
        return frozenset(FAMILIES)
    return frozenset(found) if found else None


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


def _guess(container: str, source: _Source, error: ReadError, *, decides: bool) -> str:
    """Short: the API server may cut warnings longer than 256 characters."""
    what = "injected anyway, laying" if decides else "lays"
    return (
        f"container {container}: {source.where}: cannot read {source.kind} {source.name} "
        f"({error}); secrets-init {what} every provider family"
    )
