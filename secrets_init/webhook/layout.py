"""What an injected pod holds: names, paths and the objects added, in one place.

It follows the hand-written pattern of examples/kubernetes: an initContainer
runs the secrets-init image's `copy` into a memory-backed emptyDir, which
every wrapped container mounts read-only and runs secrets-init from. The
binary unpacks itself (~63 MB) before it runs the program, into a directory
no other user can change: the wrapped containers get a memory-backed emptyDir
of their own for that (a tmpfs, whose root is sticky like /tmp; a disk-backed
emptyDir is 0777 and secrets-init refuses it), named by `SECRETS_INIT_CACHE`
so that a read-only root or the application's own /tmp mount stays as it is.
What lands there is charged to the container's memory, so a memory limit (and
request) it has is raised by the volume's size.
"""

from __future__ import annotations

from typing import Any

INIT_CONTAINER = "secrets-init"
BIN_VOLUME = "secrets-init-bin"
BIN_DIR = "/secrets-init-bin"
PROGRAM = f"{BIN_DIR}/secrets-init"
CACHE_VOLUME = "secrets-init-cache"
CACHE_DIR = "/secrets-init-cache"
CACHE_VARIABLE = "SECRETS_INIT_CACHE"
CACHE_BYTES = 96 * 2**20  # the unpacked tree, and room
STATUS_ANNOTATION = "secrets-init/status"
INJECTED = "injected"

# The image's USER; set here so that runAsNonRoot holds whatever the pod says.
NONROOT_ID = 65532


def volumes() -> list[dict[str, Any]]:
    return [
        {"name": BIN_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "32Mi"}},
        {
            "name": CACHE_VOLUME,
            "emptyDir": {"medium": "Memory", "sizeLimit": f"{CACHE_BYTES >> 20}Mi"},
        },
    ]


def init_container(image: str) -> dict[str, Any]:
    """The copy step, with the restricted Pod Security Standard's settings and small resources."""
    return {
        "name": INIT_CONTAINER,
        "image": image,
        "args": ["copy", BIN_DIR],
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            # the copy in the memory-backed volume, and a 0.5 MB process
            "limits": {"cpu": "200m", "memory": "64Mi"},
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
    """A wrapped container's mounts: the binary read-only, so the program cannot replace it."""
    return [
        {"name": BIN_VOLUME, "mountPath": BIN_DIR, "readOnly": True},
        {"name": CACHE_VOLUME, "mountPath": CACHE_DIR},
    ]


def command() -> list[str]:
    return [PROGRAM, "--"]
