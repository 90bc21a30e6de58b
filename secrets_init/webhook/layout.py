"""What an injected pod holds: names, paths and the objects added, in one place.

It follows the hand-written pattern of examples/kubernetes: an initContainer
runs the secrets-init image's `lay` into a memory-backed emptyDir, which
unpacks the binary's tree there once for the pod, ready to run, beside a
small launcher. Every wrapped container mounts that volume read-only at the
same path (the tree's paths are absolute) and runs the launcher, which runs
the tree in place: the wrapped container unpacks nothing and writes nothing
for secrets-init, so it needs no writable, executable directory of its own.

`lay` is given the provider families the wrapped containers reference, so
the tree holds only their parts (all of them when the webhook could not read
every value). Its pages are charged to the pod's memory for the pod's life, so
the volume's `sizeLimit`, the initContainer's limit and a wrapped container's
memory limit (and request) follow the size of the families laid.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from secrets_init.providers import FAMILIES

INIT_CONTAINER = "secrets-init"
BIN_VOLUME = "secrets-init-bin"
BIN_DIR = "/secrets-init-bin"
PROGRAM = f"{BIN_DIR}/secrets-init"
# Bytes each part of the tree takes unpacked: docs/benchmarks.md's part table
# (packaging/parts.py's parts, as the build lists them); the launcher beside it.
PART_BYTES = {"core": 17_200_000, "tls": 7_100_000, "aws": 3_600_000, "google": 14_500_000}
LAUNCHER_BYTES = 300_000
# The parts a family's references need beyond `core` (packaging/parts.py's PARTS).
FAMILY_PARTS = {"aws": ("tls", "aws"), "google": ("tls", "google")}
# For the sizes rounded down in the table, files rounded up to tmpfs pages and
# a dependency bump before the table is updated.
MARGIN = 1.15
STATUS_ANNOTATION = "secrets-init/status"
INJECTED = "injected"

# The image's USER; set here so that runAsNonRoot holds whatever the pod says.
NONROOT_ID = 65532


def tree_bytes(families: Collection[str]) -> int:
    """What laying `families` puts in the volume, with the margin, in whole MiB."""
    parts = {"core", *(part for family in families for part in FAMILY_PARTS[family])}
    laid = sum(PART_BYTES[part] for part in parts) + LAUNCHER_BYTES
    return math.ceil(laid * MARGIN / 2**20) * 2**20


def lay_families(families: Collection[str]) -> list[str]:
    """`lay`'s family arguments: `none` for no family, since `lay` given none lays them all."""
    if set(families) == set(FAMILIES):
        return ["all"]
    return sorted(families) or ["none"]


def volumes(families: Collection[str]) -> list[dict[str, Any]]:
    size = f"{tree_bytes(families) >> 20}Mi"
    return [{"name": BIN_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": size}}]


def init_container(image: str, families: Collection[str]) -> dict[str, Any]:
    """The lay step, with the restricted Pod Security Standard's settings and small resources."""
    return {
        "name": INIT_CONTAINER,
        "image": image,
        "args": ["lay", BIN_DIR, *lay_families(families)],
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            # the tree it writes into the memory-backed volume, and a 1 MB process
            "limits": {"cpu": "500m", "memory": f"{(tree_bytes(families) >> 20) + 32}Mi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NONROOT_ID,
            "runAsGroup": NONROOT_ID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": BIN_VOLUME, "mountPath": BIN_DIR}],
    }


def mounts() -> list[dict[str, Any]]:
    """A wrapped container's mount: the laid tree read-only, so the program cannot replace it."""
    return [{"name": BIN_VOLUME, "mountPath": BIN_DIR, "readOnly": True}]


def command() -> list[str]:
    return [PROGRAM, "--"]
