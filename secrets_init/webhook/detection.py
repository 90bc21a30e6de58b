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


def _has_references(container: dict[str, Any], reader: _Reader, warnings: list[str]) -> bool:
    found = False
    name = container.get("name", "")
    for variable in container.get("env") or []:
        if "value" in variable:
            found = found or is_reference(str(variable["value"]))
            continue
        source = variable.get("valueFrom") or {}
        for kind, ref_key in ((CONFIG_MAP, "configMapKeyRef"), (SECRET, "secretKeyRef")):
            ref = source.get(ref_key)
            if ref is None:
                continue
            try:
                found = ref.get("key") in reader.keys(kind, ref.get("name", "")) or found
            except ReadError as error:
                warnings.append(_guess(name, f"env {variable.get('name')}", kind, ref, error))
                found = True
    for source in container.get("envFrom") or []:
        for kind, ref_key in ((CONFIG_MAP, "configMapRef"), (SECRET, "secretRef")):
            ref = source.get(ref_key)
            if ref is None:
                continue
            try:
                found = bool(reader.keys(kind, ref.get("name", ""))) or found
            except ReadError as error:
                warnings.append(_guess(name, "envFrom", kind, ref, error))
                found = True
    return found


def _guess(container: str, where: str, kind: str, ref: dict[str, Any], error: ReadError) -> str:
    """Short: the API server may cut warnings longer than 256 characters."""
    return (
        f"container {container}: {where}: cannot read {kind} {ref.get('name')} ({error}); "
        "secrets-init injected anyway"
    )
