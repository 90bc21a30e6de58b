"""Admission decisions as pure functions: patches applied by jsonpatch, pods validated.

The Cluster and Images here answer from memory; test_kube.py and
test_registry.py drive the real ones, test_server.py the whole process.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from secrets_init.webhook import layout, review
from secrets_init.webhook.cluster import ReadError
from secrets_init.webhook.mutate import DENIED, MUTATED, SKIPPED, UNCHANGED, Mutator
from secrets_init.webhook.program import ImageConfig
from testing import pods
from tests.webhook import pss, shapes
from tests.webhook.checks import assert_valid, patched
from tests.webhook.memory import MemoryCluster, MemoryImages

ORDERS_IMAGE = "registry.example/orders:1.0"

# What each shape's initContainer lays (testing.pods: ConfigMap refs holds an AWS
# reference, Secret refs a Google one), and the volume's sizeLimit for it.
LAID = {
    "command-and-args": "aws",
    "command-only": "aws",
    "args-only": "aws",
    "neither": "aws",
    "init-container-with-reference": "aws",
    "init-container-without-reference": "aws",
    "several-containers": "all",  # a: AWS, c: Google
    "envFrom-configmap": "aws",
    "envFrom-secret-with-prefix": "google",
    "valueFrom-secret": "google",
    "valueFrom-configmap": "aws",
    "own-env-and-mounts": "aws",
    "memory-limits": "aws",
}
SIZE_LIMIT = {"aws": "31Mi", "google": "43Mi", "all": "47Mi"}


def mutator(cluster: MemoryCluster | None = None, images: MemoryImages | None = None) -> Mutator:
    return Mutator(
        image=pods.SECRETS_INIT_IMAGE,
        cluster=cluster or MemoryCluster(),
        images=images
        or MemoryImages({ORDERS_IMAGE: ImageConfig(("/entry",), ("serve", "--port=80"))}),
        excluded=("secrets-init",),
    )


def decide(pod: dict[str, Any], m: Mutator | None = None, **kwargs: Any) -> tuple[str, Any]:
    decision = (m or mutator()).decide(review.parse(_json(pods.review(pod, **kwargs))))
    return decision.outcome, decision.response["response"]


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod["spec"]
    [found] = [
        c for c in [*spec.get("initContainers", []), *spec["containers"]] if c["name"] == name
    ]
    return found


@pytest.mark.parametrize("shape", sorted(shapes.SHAPES))
def test_each_shape_is_injected_validly_and_once(shape: str) -> None:
    original = shapes.SHAPES[shape]
    assert_valid(original)
    outcome, response = decide(original)
    assert outcome == MUTATED
    assert "warnings" not in response
    after = patched(original, response)
    assert_valid(after)

    init = after["spec"]["initContainers"]
    assert init[0]["name"] == layout.INIT_CONTAINER
    assert init[0]["image"] == pods.SECRETS_INIT_IMAGE
    assert init[0]["args"] == ["lay", layout.BIN_DIR, LAID[shape]]
    [volume] = [v for v in after["spec"]["volumes"] if v["name"] == layout.BIN_VOLUME]
    assert volume["emptyDir"] == {"medium": "Memory", "sizeLimit": SIZE_LIMIT[LAID[shape]]}
    assert [c["name"] for c in init[1:]] == [
        c["name"] for c in original["spec"].get("initContainers", [])
    ]
    assert after["metadata"]["annotations"][layout.STATUS_ANNOTATION] == layout.INJECTED

    # Mutating twice equals mutating once.
    outcome, again = decide(after)
    assert outcome == SKIPPED and "patch" not in again
    assert patched(after, again) == after


@pytest.mark.parametrize("shape", sorted(shapes.SHAPES))
def test_wrapped_containers_run_their_program_under_secrets_init(shape: str) -> None:
    original = shapes.SHAPES[shape]
    after = patched(original, decide(original)[1])
    for before in [*original["spec"].get("initContainers", []), *original["spec"]["containers"]]:
        now = _container(after, before["name"])
        if now == before:
            continue  # not wrapped: untouched
        assert now["command"] == [layout.PROGRAM, "--"]
        expected = (
            [*before["command"], *before.get("args", [])]
            if before.get("command")
            else ["/entry", *(before.get("args") or ["serve", "--port=80"])]
        )
        assert now["args"] == expected
        mounts = {m["mountPath"]: m for m in now["volumeMounts"]}
        assert mounts[layout.BIN_DIR] == {
            "name": layout.BIN_VOLUME,
            "mountPath": layout.BIN_DIR,
            "readOnly": True,
        }
        assert now["volumeMounts"][: len(before.get("volumeMounts", []))] == before.get(
            "volumeMounts", []
        )
        assert now.get("env", [])[: len(before.get("env", []))] == before.get("env", [])
        names = [v["name"] for v in now.get("env", [])]
        assert len(names) == len(set(names))
        # Everything else of the container is as it was.
        changed = {"command", "args", "volumeMounts", "env", "resources"}
        rest = {k: v for k, v in now.items() if k not in changed}
        assert rest == {k: v for k, v in before.items() if k not in changed}


def test_which_containers_are_wrapped() -> None:
    after = patched(
        shapes.SHAPES["several-containers"], decide(shapes.SHAPES["several-containers"])[1]
    )
    assert _container(after, "a")["command"][0] == layout.PROGRAM
    assert _container(after, "b") == shapes.SHAPES["several-containers"]["spec"]["containers"][1]
    assert _container(after, "c")["args"] == ["/entry", "serve"]

    shape = shapes.SHAPES["init-container-without-reference"]
    after = patched(shape, decide(shape)[1])
    assert _container(after, "wait") == shape["spec"]["initContainers"][0]
    assert [c["name"] for c in after["spec"]["initContainers"]] == ["secrets-init", "wait"]


def test_the_containers_own_cache_variable_wins() -> None:
    shape = shapes.SHAPES["own-env-and-mounts"]
    env = _container(patched(shape, decide(shape)[1]), "app")["env"]
    assert [v for v in env if v["name"] == "SECRETS_INIT_CACHE"] == [
        {"name": "SECRETS_INIT_CACHE", "value": "/var/cache/si"}
    ]


@pytest.mark.parametrize("shape", sorted(shapes.WITHOUT_REFERENCES))
def test_pods_without_references_are_allowed_unchanged(shape: str) -> None:
    outcome, response = decide(shapes.WITHOUT_REFERENCES[shape])
    assert outcome == UNCHANGED
    assert response == {"uid": "u-1", "allowed": True}


def test_dry_run_gets_the_same_answer() -> None:
    shape = shapes.SHAPES["neither"]
    assert decide(shape, dry_run=True) == decide(shape)


def test_images_are_asked_only_without_command_and_with_the_pull_secrets() -> None:
    images = MemoryImages({ORDERS_IMAGE: ImageConfig(("/e",))})
    decide(shapes.SHAPES["command-and-args"], mutator(images=images))
    assert images.asked == []
    shape = copy.deepcopy(shapes.SHAPES["args-only"])
    shape["spec"]["imagePullSecrets"] = [{"name": "pull"}, {"name": "sa-pull"}]
    decide(shape, mutator(images=images))
    assert images.asked == [(ORDERS_IMAGE, "orders", ("pull", "sa-pull"))]


def test_a_failed_image_lookup_denies_with_the_way_out() -> None:
    outcome, response = decide(shapes.SHAPES["neither"], mutator(images=MemoryImages()))
    assert outcome == DENIED and response["allowed"] is False
    message = response["status"]["message"]
    assert "'app' sets no command" in message
    assert f"{ORDERS_IMAGE}: manifest unknown" in message
    assert "Set `command`" in message and "imagePullSecrets" in message


def test_an_image_without_a_program_denies() -> None:
    images = MemoryImages({ORDERS_IMAGE: ImageConfig()})
    outcome, response = decide(shapes.SHAPES["neither"], mutator(images=images))
    assert outcome == DENIED
    assert "names a program" in response["status"]["message"]


@pytest.mark.parametrize("status", [403, 404, 500])
def test_an_unreadable_object_injects_with_a_warning(status: int) -> None:
    """Never skip when unsure: the original webhook's leak (its issue 50)."""
    cluster = MemoryCluster(failing={"refs": ReadError(f"HTTP {status}", status)})
    outcome, response = decide(shapes.SHAPES["valueFrom-secret"], mutator(cluster=cluster))
    assert outcome == MUTATED
    [warning] = response["warnings"]
    assert "Secret refs" in warning and f"HTTP {status}" in warning and "app" in warning
    assert "every provider family" in warning
    assert len(warning) <= 256
    after = patched(shapes.SHAPES["valueFrom-secret"], response)
    assert_valid(after)
    _assert_lays(after, "all")


def _assert_lays(pod: dict[str, Any], families: str) -> None:
    """The initContainer lays `families`, and the volume and memory are sized for them."""
    assert _container(pod, layout.INIT_CONTAINER)["args"] == ["lay", layout.BIN_DIR, families]
    [volume] = [v for v in pod["spec"]["volumes"] if v["name"] == layout.BIN_VOLUME]
    assert volume["emptyDir"]["sizeLimit"] == SIZE_LIMIT[families]


@pytest.mark.parametrize(
    ("literal", "source", "laid"),
    [
        (pods.SM, {"configMapRef": {"name": "refs"}}, "aws"),  # refs: AWS too
        (pods.GCP, {"configMapRef": {"name": "refs"}}, "all"),
        (pods.GCP, {"configMapRef": {"name": "plain"}}, "google"),
        (pods.SM, {"secretRef": {"name": "refs"}}, "all"),  # refs: Google
        (pods.SM, {"secretRef": {"name": "broken"}}, "all"),  # cannot tell what it adds
        (pods.GCP, {"secretRef": {"name": "broken"}}, "all"),
    ],
)
def test_every_value_adds_its_family(literal: str, source: dict[str, Any], laid: str) -> None:
    """A literal reference does not end the search: an object may add the other family."""
    cluster = MemoryCluster(failing={"broken": ReadError("HTTP 403 Forbidden", 403)})
    shape = pods.pod(pods.container(command=["/app"], env=pods.env(A=literal), envFrom=[source]))
    outcome, response = decide(shape, mutator(cluster=cluster))
    assert outcome == MUTATED
    after = patched(shape, response)
    assert_valid(after)
    _assert_lays(after, laid)
    if "broken" in str(source):
        assert response["warnings"] == [
            "container app: envFrom: cannot read Secret broken (HTTP 403 Forbidden); "
            "secrets-init lays every provider family"
        ]
    else:
        assert "warnings" not in response


def test_a_cannot_tell_pod_lays_all_and_is_mutated_once() -> None:
    cluster = MemoryCluster(failing={"refs": ReadError("HTTP 500", 500)})
    shape = shapes.SHAPES["valueFrom-secret"]
    after = patched(shape, decide(shape, mutator(cluster=cluster))[1])
    _assert_lays(after, "all")
    outcome, again = decide(after, mutator(cluster=cluster))
    assert outcome == SKIPPED and patched(after, again) == after


def test_hand_wrapped_containers_add_no_family() -> None:
    """A container that runs its own secrets-init does not use the laid tree."""
    shape = pods.pod(
        pods.container("app", command=["/app"], env=pods.env(DB=pods.SM)),
        pods.container(
            "own", command=["/helper/bin/secrets-init", "--"], args=["/b"], env=pods.env(T=pods.GCP)
        ),
    )
    after = patched(shape, decide(shape)[1])
    _assert_lays(after, "aws")
    assert _container(after, "own") == shape["spec"]["containers"][1]


def test_each_object_is_read_once_per_review() -> None:
    cluster = MemoryCluster()
    shape = pods.pod(
        pods.container("a", command=["/a"], envFrom=[{"configMapRef": {"name": "plain"}}]),
        pods.container("b", command=["/b"], envFrom=[{"configMapRef": {"name": "plain"}}]),
    )
    assert decide(shape, mutator(cluster=cluster))[0] == UNCHANGED
    assert cluster.reads == [("ConfigMap", "orders", "plain")]


def test_secret_values_never_appear_in_a_response() -> None:
    cluster = MemoryCluster(failing={"refs": ReadError("HTTP 500", 500)})
    for m in (mutator(), mutator(cluster=cluster), mutator(images=MemoryImages())):
        for shape in [*shapes.SHAPES.values(), *shapes.WITHOUT_REFERENCES.values()]:
            text = str(decide(shape, m)[1])
            for objects in (pods.CONFIG_MAPS, pods.SECRETS):
                for values in objects.values():
                    for value in values.values():
                        assert value not in text or value in str(shape)


def test_annotations_become_secrets_init_variables() -> None:
    shape = copy.deepcopy(shapes.SHAPES["command-only"])
    shape["metadata"]["annotations"] = {
        "secrets-init/log-format": "json",
        "secrets-init/timeout": "5",
        "secrets-init/provider": "aws",
        "other/thing": "x",
    }
    after = patched(shape, decide(shape)[1])
    env = {v["name"]: v["value"] for v in _container(after, "app")["env"]}
    assert env["SECRETS_INIT_LOG_FORMAT"] == "json"
    assert env["SECRETS_INIT_TIMEOUT"] == "5"
    assert env["SECRETS_INIT_PROVIDER"] == "aws"
    assert "SECRETS_INIT_CACHE" not in env  # nothing to unpack in the container
    assert_valid(after)


@pytest.mark.parametrize(
    ("annotation", "value", "message"),
    [
        ("secrets-init/log-format", "xml", "'xml' is not one of text, json"),
        ("secrets-init/timeout", "soon", "not a number of seconds"),
        ("secrets-init/colour", "red", "not a secrets-init option"),
        ("secrets-init/check", "true", "not a secrets-init option"),  # no twin: never
    ],
)
def test_a_bad_annotation_denies_with_secrets_inits_message(
    annotation: str, value: str, message: str
) -> None:
    shape = copy.deepcopy(shapes.SHAPES["command-only"])
    shape["metadata"]["annotations"] = {annotation: value}
    outcome, response = decide(shape)
    assert outcome == DENIED
    assert annotation in response["status"]["message"]
    assert message in response["status"]["message"]


def test_opt_out_label_and_excluded_namespaces() -> None:
    shape = copy.deepcopy(shapes.SHAPES["command-only"])
    shape["metadata"]["labels"]["secrets-init/inject"] = "disabled"
    assert decide(shape) == (SKIPPED, {"uid": "u-1", "allowed": True})
    for namespace in ("kube-system", "secrets-init"):
        shape = copy.deepcopy(shapes.SHAPES["command-only"])
        shape["metadata"]["namespace"] = namespace
        assert decide(shape)[0] == SKIPPED


def test_hand_wrapped_containers_are_left_alone() -> None:
    shape = pods.pod(
        pods.container(
            command=["/helper/bin/secrets-init", "--"], args=["/app"], env=pods.env(DB=pods.SM)
        )
    )
    assert decide(shape) == (SKIPPED, {"uid": "u-1", "allowed": True})


def test_only_pod_creations_are_mutated() -> None:
    request = pods.review(shapes.SHAPES["command-only"])
    request["request"]["operation"] = "UPDATE"
    decision = mutator().decide(review.parse(_json(request)))
    assert decision.outcome == SKIPPED and "patch" not in decision.response["response"]


def test_a_pod_that_breaks_restricted_is_not_made_worse() -> None:
    """The webhook adds nothing that the restricted standard forbids, even to a baseline pod."""
    shape = copy.deepcopy(shapes.SHAPES["command-only"])
    del shape["spec"]["securityContext"]
    before = set(pss.violations(shape))
    after = patched(shape, decide(shape)[1])
    assert set(pss.violations(after)) == before


@pytest.mark.parametrize("shape", sorted(shapes.SHAPES))
def test_memory_holds_what_lands_in_memory_backed_volumes(shape: str) -> None:
    """A tmpfs page is charged to the container that wrote it: the copy, the unpacked tree."""
    from kubernetes.utils import parse_quantity

    original = shapes.SHAPES[shape]
    after = patched(original, decide(original)[1])
    volumes = {v["name"]: v.get("emptyDir") for v in after["spec"]["volumes"]}
    for container in [*after["spec"]["initContainers"], *after["spec"]["containers"]]:
        memory = (container.get("resources") or {}).get("limits", {}).get("memory")
        if memory is None:
            continue  # no limit: nothing to be killed by
        writable = [
            volumes[m["name"]] for m in container.get("volumeMounts", []) if not m.get("readOnly")
        ]
        in_memory = sum(
            parse_quantity(d["sizeLimit"]) for d in writable if d and d.get("medium") == "Memory"
        )
        assert parse_quantity(memory) >= in_memory + 32 * 2**20, container["name"]


def test_memory_requests_and_limits_grow_by_the_tree() -> None:
    """Both containers reference AWS only: they grow by the AWS tree (31Mi), not the whole one."""
    shape = shapes.SHAPES["memory-limits"]
    after = patched(shape, decide(shape)[1])
    guaranteed = _container(after, "guaranteed")["resources"]
    assert guaranteed["requests"] == guaranteed["limits"] == {"cpu": "100m", "memory": "159Mi"}
    burstable = _container(after, "burstable")["resources"]
    assert burstable == {
        "requests": {"memory": str(100_000_000 + 31 * 2**20)},
        "limits": {"memory": "1055Mi"},
    }
    assert _container(after, "secrets-init")["resources"]["limits"]["memory"] == "63Mi"


def test_memory_grows_by_every_family_when_one_container_has_google() -> None:
    shape = copy.deepcopy(shapes.SHAPES["memory-limits"])
    shape["spec"]["containers"][1]["env"] = pods.env(T=pods.GCP)
    after = patched(shape, decide(shape)[1])
    _assert_lays(after, "all")
    assert _container(after, "guaranteed")["resources"]["limits"]["memory"] == "175Mi"
    assert _container(after, "burstable")["resources"]["limits"]["memory"] == "1071Mi"
    assert _container(after, "secrets-init")["resources"]["limits"]["memory"] == "79Mi"


def test_the_tree_is_memory_backed_and_read_only_where_the_program_runs() -> None:
    """The wrapped container mounts only the laid tree, read-only, at the path it was laid at."""
    shape = shapes.SHAPES["command-only"]
    after = patched(shape, decide(shape)[1])
    volumes = {v["name"]: v["emptyDir"] for v in after["spec"]["volumes"]}
    assert volumes == {layout.BIN_VOLUME: {"medium": "Memory", "sizeLimit": "31Mi"}}
    [laid] = _container(after, layout.INIT_CONTAINER)["volumeMounts"]
    assert laid == {"name": layout.BIN_VOLUME, "mountPath": layout.BIN_DIR}
    [mount] = _container(after, "app")["volumeMounts"]
    assert mount == {"name": layout.BIN_VOLUME, "mountPath": layout.BIN_DIR, "readOnly": True}


def test_no_warning_when_the_unread_object_changes_nothing() -> None:
    """Both families are certain already: the unreadable object adds nothing to warn about."""
    cluster = MemoryCluster(failing={"broken": ReadError("HTTP 500", 500)})
    shape = pods.pod(
        pods.container(
            command=["/app"],
            env=pods.env(DB=pods.SM, T=pods.GCP),
            envFrom=[{"secretRef": {"name": "broken"}}],
        )
    )
    outcome, response = decide(shape, mutator(cluster=cluster))
    assert outcome == MUTATED and "warnings" not in response
    _assert_lays(patched(shape, response), "all")


def test_a_warning_only_when_the_guess_decides() -> None:
    cluster = MemoryCluster(failing={"broken": ReadError("HTTP 403 Forbidden", 403)})
    shape = pods.pod(
        pods.container(
            command=["/app"],
            envFrom=[{"secretRef": {"name": "broken"}}, {"configMapRef": {"name": "plain"}}],
        )
    )
    outcome, response = decide(shape, mutator(cluster=cluster))
    assert outcome == MUTATED
    assert response["warnings"] == [
        "container app: envFrom: cannot read Secret broken (HTTP 403 Forbidden); "
        "secrets-init injected anyway, laying every provider family"
    ]
    _assert_lays(patched(shape, response), "all")
