"""The JSON Patch (RFC 6902) that injects secrets-init into a pod.

Operations address containers by their index in the pod as received, so every
change to an existing container comes before the initContainer is inserted at
the front (which shifts the indices of the others).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from secrets_init.webhook import layout, quantity

Operation = dict[str, Any]


def build(
    pod: dict[str, Any],
    image: str,
    programs: Mapping[str, list[str]],
    environment: Mapping[str, str],
    families: Collection[str],
) -> list[Operation]:
    """Wrap each container named in `programs` (name -> argv to run) and add what they need.

    `environment` is set on each wrapped container unless it sets that variable itself;
    `families` are the provider families laid, which size the volume and the memory added.
    """
    tree = layout.tree_bytes(families)
    spec = pod.get("spec") or {}
    operations: list[Operation] = []
    for section in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(section) or []):
            if container.get("name") in programs:
                path = f"/spec/{section}/{index}"
                operations += _wrap(path, container, programs[container["name"]], environment, tree)
    operations += _append(spec, "/spec/volumes", layout.volumes(families))
    if spec.get("initContainers"):
        operations.append(
            {
                "op": "add",
                "path": "/spec/initContainers/0",
                "value": layout.init_container(image, families),
            }
        )
    else:
        operations.append(
            {
                "op": "add",
                "path": "/spec/initContainers",
                "value": [layout.init_container(image, families)],
            }
        )
    annotations = (pod.get("metadata") or {}).get("annotations")
    if annotations is None:
        operations.append(
            {
                "op": "add",
                "path": "/metadata/annotations",
                "value": {layout.STATUS_ANNOTATION: layout.INJECTED},
            }
        )
    else:
        operations.append(
            {
                "op": "add",
                "path": "/metadata/annotations/" + _pointer(layout.STATUS_ANNOTATION),
                "value": layout.INJECTED,
            }
        )
    return operations


def _wrap(
    path: str,
    container: dict[str, Any],
    program: list[str],
    environment: Mapping[str, str],
    tree: int,
) -> list[Operation]:
    # "add" replaces a member that exists (RFC 6902, 4.1), so one op covers both cases.
    operations: list[Operation] = [
        {"op": "add", "path": f"{path}/command", "value": layout.command()},
        {"op": "add", "path": f"{path}/args", "value": program},
    ]
    operations += _append(container, f"{path}/volumeMounts", layout.mounts())
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        memory = (resources.get(kind) or {}).get("memory")
        if memory is not None:
            operations.append(
                {
                    "op": "replace",
                    "path": f"{path}/resources/{kind}/memory",
                    "value": quantity.plus(str(memory), tree),
                }
            )
    own = {variable.get("name") for variable in container.get("env") or []}
    added = [{"name": k, "value": v} for k, v in environment.items() if k not in own]
    operations += _append(container, f"{path}/env", added)
    return operations


def _append(parent: dict[str, Any], path: str, items: list[Any]) -> list[Operation]:
    """Append to the list at `path`, creating it when `parent` has none."""
    if not items:
        return []
    key = path.rsplit("/", 1)[1]
    if parent.get(key) is None:
        return [{"op": "add", "path": path, "value": items}]
    return [{"op": "add", "path": f"{path}/-", "value": item} for item in items]


def _pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
