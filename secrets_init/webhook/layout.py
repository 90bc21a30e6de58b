"""What an injected pod holds: names, paths and the objects added, in one place.

It follows the hand-written pattern of examples/kubernetes: an initContainer
runs the secrets-init image's `lay` into a memory-backed emptyDir, which
unpacks the binary's tree there once for the pod, ready to run, beside a
small launcher. Every wrapped container mounts that volume read-only at the
same path (the tree's paths are absolute) and runs the launcher, which runs
the tree in place: the wrapped container unpacks nothing and writes nothing
for secrets-init, so it needs no writable, executable directory of its own.

The tree is laid whole (every provider family): the initContainer is added
once per pod whatever its containers reference. Its pages are charged to the
pod's memory for the pod's life, so a wrapped container's memory limit (and
request) is raised by its size.
"""

from __future__ import annotations

from typing import Any

INIT_CONTAINER = "secrets-init"
BIN_VOLUME = "secrets-init-bin"
BIN_DIR = "/secrets-init-bin"
PROGRAM = f"{BIN_DIR}/secrets-init"
# The laid tree with every part (~65 MB, docs/benchmarks.md's part sizes) and the launcher.
TREE_BYTES = 72 * 2**20
STATUS_ANNOTATION = "secrets-init/status"
INJECTED = "injected"

# The image's USER; set here so that runAsNonRoot holds whatever the pod says.
NONROOT_ID = 65532


def volumes() -> list[dict[str, Any]]:
    size = f"{TREE_BYTES >> 20}Mi"
    return [{"name": BIN_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": size}}]


def init_container(image: str) -> dict[str, Any]:
    """The lay step, with the restricted Pod Security Standard's settings and small resources."""
    return {
        "name": INIT_CONTAINER,
        "image": image,
        "args": ["lay", BIN_DIR],
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            # the tree it writes into the memory-backed volume, and a 1 MB process
            "limits": {"cpu": "500m", "memory": f"{(TREE_BYTES >> 20) + 32}Mi"},
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
