"""Pods and AdmissionReviews for the webhook, and the ConfigMap/Secret world they read."""

from __future__ import annotations

import copy
from typing import Any

SM = "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/db"
SSM = "arn:aws:ssm:us-east-1:123456789012:parameter/orders/flags"
GCP = "gcp:secretmanager:projects/p/secrets/key"
SECRETS_INIT_IMAGE = "registry.example/secrets-init:0.1.0"

# What the small API server (and the in-memory cluster) hold, namespace "orders".
CONFIG_MAPS: dict[str, dict[str, str]] = {
    "refs": {"DB": SM, "PLAIN": "hello"},
    "plain": {"COLOR": "blue", "NEAR_MISS": "arn:aws:s3:::bucket"},
}
SECRETS: dict[str, dict[str, str]] = {
    "refs": {"TOKEN": GCP, "USER": "admin"},
    "plain": {"PASSWORD": "hunter2-not-a-reference"},
}

RESTRICTED_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def pod(*containers: dict[str, Any], init: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [copy.deepcopy(c) for c in containers],
    }
    if init is not None:
        spec["initContainers"] = copy.deepcopy(init)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "orders-", "namespace": "orders", "labels": {"app": "x"}},
        "spec": spec,
    }


def container(name: str = "app", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": "registry.example/orders:1.0",
        "securityContext": dict(RESTRICTED_CONTEXT),
        **fields,
    }


def env(**values: str) -> list[dict[str, Any]]:
    return [{"name": name, "value": value} for name, value in values.items()]


def review(pod: dict[str, Any], *, uid: str = "u-1", dry_run: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": pod["metadata"].get("namespace", "orders"),
            "object": pod,
            "dryRun": dry_run,
        },
    }
