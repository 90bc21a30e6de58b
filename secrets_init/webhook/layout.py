"""What an injected pod holds: names, paths and the objects added, in one place.

It follows the hand-written pattern of examples/kubernetes: an initContainer
runs the secrets-init image's `copy` into a memory-backed emptyDir, which
every wrapped container mounts read-only and runs secrets-init from. The
binary unpacks itself before it runs the program; the wrapped containers get
their own emptyDir for that (`SECRETS_INIT_CACHE`), so a read-only root or an
application's own /tmp mount is left as it is. It is disk-backed because its
~63 MB would otherwise be charged to a memory limit the webhook does not own.
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
STATUS_ANNOTATION = "secrets-init/status"
INJECTED = "injected"

# The image's USER; set here so that runAsNonRoot holds whatever the pod says.
NONROOT_ID = 65532


def volumes() -> list[dict[str, Any]]:
    return [
        {"name": BIN_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "32Mi"}},
        {"name": CACHE_VOLUME, "emptyDir": {"sizeLimit": "128Mi"}},
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
