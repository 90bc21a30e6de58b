"""Pod shapes the webhook tests share: with references, and without."""

from __future__ import annotations

from typing import Any

from testing.pods import GCP, SM, SSM, container, env, pod


def value_from(name: str, source: str, object_name: str, key: str) -> dict[str, Any]:
    """An env entry whose value comes from `source` (configMapKeyRef or secretKeyRef)."""
    return {"name": name, "valueFrom": {source: {"name": object_name, "key": key}}}


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
        container(command=["/app"], env=[value_from("T", "secretKeyRef", "refs", "TOKEN")])
    ),
    "valueFrom-configmap": pod(
        container(command=["/app"], env=[value_from("D", "configMapKeyRef", "refs", "DB")])
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
        container(command=["/app"], env=[value_from("D", "configMapKeyRef", "refs", "PLAIN")])
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
