"""examples/kubernetes, loaded: the manifests as kubernetes client models, and their references."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from secrets_init import references
from testing.process import ROOT

EXAMPLES = ROOT / "examples" / "kubernetes"
MODELS = {
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("batch/v1", "Job"): "V1Job",
}


@dataclass(frozen=True)
class Manifest:
    path: Path
    raw: dict[str, Any]
    model: Any  # a kubernetes.client model: V1Deployment, V1Job, V1ServiceAccount

    @property
    def kind(self) -> str:
        return str(self.raw["kind"])


def _api() -> Any:
    from kubernetes import client

    return client.ApiClient()


def load(path: Path) -> list[Manifest]:
    """Every document of a YAML file, checked against the Kubernetes API's models.

    The client's models ignore fields they do not know, so each document must
    also come back unchanged from the model: a misspelt or misplaced field,
    or a value of the wrong type, makes the round trip differ.
    """
    api = _api()
    manifests = []
    for raw in yaml.safe_load_all(path.read_text()):
        key = (raw.get("apiVersion"), raw.get("kind"))
        assert key in MODELS, f"{path.name}: no model for {key}"
        model = api._ApiClient__deserialize(raw, MODELS[key])
        assert api.sanitize_for_serialization(model) == raw, f"{path.name}: {key} round trip"
        manifests.append(Manifest(path, raw, model))
    return manifests


def load_dir(directory: Path) -> list[Manifest]:
    return [manifest for path in sorted(directory.glob("*.yaml")) for manifest in load(path)]


def workloads(manifests: list[Manifest]) -> list[Manifest]:
    return [manifest for manifest in manifests if manifest.kind in ("Deployment", "Job")]


def pod_spec(workload: Manifest) -> Any:
    return workload.model.spec.template.spec


def env_of(container: Any) -> dict[str, str]:
    return {variable.name: variable.value for variable in container.env or ()}


def references_in(container: Any) -> list[references.Reference]:
    """What secrets-init would resolve in this container, parsed by the providers themselves."""
    environ = {name.encode(): value.encode() for name, value in env_of(container).items()}
    found, malformed = references.scan(environ)
    if malformed:
        raise ValueError("; ".join(str(error) for error in malformed))
    return found


def size_limits(mount_path: str) -> list[int]:
    """The sizeLimit, in bytes, of every emptyDir that a container mounts at mount_path."""
    from kubernetes.utils import parse_quantity

    limits = []
    for workload in workloads(load_dir(EXAMPLES / "eks") + load_dir(EXAMPLES / "gke")):
        spec = pod_spec(workload)
        volumes = {volume.name: volume for volume in spec.volumes or ()}
        for container in [*(spec.init_containers or ()), *spec.containers]:
            for mount in container.volume_mounts or ():
                empty_dir = volumes[mount.name].empty_dir
                if mount.mount_path == mount_path and empty_dir is not None:
                    limits.append(int(parse_quantity(empty_dir.size_limit)))
    return limits
