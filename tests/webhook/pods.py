"""Pod shapes the webhook tests share, and a ConfigMap/Secret world for them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

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


SHAPES: dict[str, dict[str, Any]] = {
    "command-and-args": pod(
        container(command=["/app/server"], args=["--port", "8080"], env=env(DB=SM))
    ),
    "command-only": pod(container(command=["/app/server"], env=env(P=SSM))),
    "args-only": pod(container(args=["--port", "8080"], env=env(DB=SM))),
    "neither": pod(container(env=env(DB=SM, PLAIN="x"))),
    "init-container-with-reference": pod(
        container(command=["/app/server"]),
        init=[container("migrate", command=["/app/migrate"], env=env(DB=SM))],
    ),
    "init-container-without-reference": pod(
        container(command=["/app/server"], env=env(DB=SM)),
        init=[container("wait", command=["/bin/wait"])],
    ),
    "several-containers": pod(
        container("a", command=["/a"], env=env(DB=SM)),
        container("b", command=["/b"], env=env(COLOR="blue")),
        container("c", args=["serve"], env=env(TOKEN=GCP)),
    ),
    "envFrom-configmap": pod(
        container(command=["/app"], envFrom=[{"configMapRef": {"name": "refs"}}])
    ),
    "envFrom-secret-with-prefix": pod(
        container(command=["/app"], envFrom=[{"prefix": "X_", "secretRef": {"name": "refs"}}])
    ),
    "valueFrom-secret": pod(
        container(
            command=["/app"],
            env=[{"name": "T", "valueFrom": {"secretKeyRef": {"name": "refs", "key": "TOKEN"}}}],
        )
    ),
    "valueFrom-configmap": pod(
        container(
            command=["/app"],
            env=[{"name": "D", "valueFrom": {"configMapKeyRef": {"name": "refs", "key": "DB"}}}],
        )
    ),
    "own-env-and-mounts": pod(
        container(
            command=["/app"],
            env=env(DB=SM, SECRETS_INIT_CACHE="/var/cache/si"),
            volumeMounts=[{"name": "data", "mountPath": "/data"}],
        )
    ),
}
SHAPES["memory-limits"] = pod(
    container(
        "guaranteed",
        command=["/app"],
        env=env(DB=SM),
        resources={
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "100m", "memory": "128Mi"},
        },
    ),
    container(
        "burstable",
        command=["/app"],
        env=env(P=SSM),
        resources={"requests": {"memory": "100M"}, "limits": {"memory": "1Gi"}},
    ),
)
SHAPES["own-env-and-mounts"]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
SHAPES["own-env-and-mounts"]["metadata"]["annotations"] = {"team": "orders"}

WITHOUT_REFERENCES: dict[str, dict[str, Any]] = {
    "no-env": pod(container(command=["/app"])),
    "plain-env": pod(container(env=env(A="arn:aws:s3:::bucket", B="gcp:other"))),
    "valueFrom-non-reference": pod(
        container(
            command=["/app"],
            env=[{"name": "D", "valueFrom": {"configMapKeyRef": {"name": "refs", "key": "PLAIN"}}}],
        )
    ),
    "envFrom-plain": pod(
        container(
            command=["/app"],
            envFrom=[{"configMapRef": {"name": "plain"}}, {"secretRef": {"name": "plain"}}],
        )
    ),
    "fieldRef": pod(
        container(
            command=["/app"],
            env=[{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        )
    ),
}
