"""examples/kubernetes: valid objects, the lay pattern, and least privilege that matches.

No cluster here: every document is checked against the kubernetes client's
models (tests/container/examples.py), then against what the README promises.
The lay pattern itself runs for real, played by podman, in test_image.py;
here podman shows why the shared volume must be memory-backed.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from testing.process import child_env
from tests.container.examples import (
    EXAMPLES,
    Manifest,
    env_of,
    load_dir,
    pod_spec,
    references_in,
    workloads,
)
from tests.container.podman import Podman

EKS = EXAMPLES / "eks"
GKE = EXAMPLES / "gke"
HELPER = "/helper/bin"
IMAGE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9./-]+:[0-9][A-Za-z0-9._-]*$")


def test_every_example_file_is_checked() -> None:
    checked = {"deployment.yaml", "job.yaml", "serviceaccount.yaml"}
    checked |= {"iam-policy.json", "iam-trust-policy.json", "iam-bindings.sh"}
    assert {path.name for path in EXAMPLES.rglob("*") if path.is_file()} <= checked
    kinds = sorted(manifest.kind for manifest in load_dir(EKS) + load_dir(GKE))
    assert kinds == ["Deployment", "Deployment", "Job", "ServiceAccount", "ServiceAccount"]


@pytest.mark.parametrize(
    "workload",
    workloads(load_dir(EKS)) + workloads(load_dir(GKE)),
    ids=lambda workload: f"{workload.path.parent.name}/{workload.path.name}",
)
def test_lay_pattern(workload: Manifest) -> None:
    spec = pod_spec(workload)
    volumes = {volume.name: volume for volume in spec.volumes}

    [init] = spec.init_containers
    assert init.command is None  # the image's ENTRYPOINT, /secrets-init
    family = workload.path.parent.name.replace("eks", "aws").replace("gke", "google")
    # Only what this pod's references need: every container's references are of this family.
    assert init.args == ["lay", HELPER, family]
    assert all(ref.provider.startswith(family) for c in spec.containers for ref in references_in(c))
    assert init.env is None
    assert IMAGE.match(init.image) and "secrets-init" in init.image
    [init_mount] = init.volume_mounts  # its only writable directory
    assert init_mount.mount_path == HELPER and not init_mount.read_only
    shared = volumes[init_mount.name].empty_dir
    # Memory-backed: a tmpfs, whose root is sticky (1777); a disk-backed emptyDir is 0777,
    # under which secrets-init does not trust a tree.
    assert shared is not None and shared.medium == "Memory" and shared.size_limit

    for container in spec.containers:
        assert container.command[0] == f"{HELPER}/secrets-init"
        assert container.command[-1] == "--" and container.args
        assert "SECRETS_INIT_CACHE" not in env_of(container)  # nothing to unpack
        # Only the laid tree, read-only and at the path it was laid at: no /tmp needed.
        [mount] = container.volume_mounts
        assert mount.name == init_mount.name and mount.read_only
        assert mount.mount_path == HELPER

    assert spec.share_process_namespace is not True  # secrets-init must be PID 1
    if workload.kind == "Job":
        assert spec.restart_policy == "Never"


@pytest.mark.container
def test_a_disk_backed_volume_is_refused(
    podman: Podman, image: str, app_image: str, tmp_path: Path
) -> None:
    """Why the examples keep the shared volume memory-backed, played by podman.

    kubelet makes a disk-backed emptyDir a directory of mode 0777 without the
    sticky bit: another user in the pod could swap the tree laid there for
    theirs. The launcher refuses to run it and says why. (A memory-backed
    emptyDir is a tmpfs with mode 1777: test_image.py's lay pattern runs in one.)
    """
    disk = tmp_path / "helper-volume"
    disk.mkdir()
    disk.chmod(0o777)
    laid = podman.run(
        image, "lay", HELPER, "aws",
        options=["--read-only", "--read-only-tmpfs=false", "--network", "none",
                 "--volume", f"{disk}:{HELPER}"],
    )  # fmt: skip
    assert laid.returncode == 0, laid.stderr
    done = podman.run(
        app_image,
        f"{HELPER}/secrets-init", "--", "/bin/busybox", "true",
        options=[
            "--read-only", "--read-only-tmpfs=false", "--network", "none",
            "--volume", f"{disk}:{HELPER}:ro",
        ],
    )  # fmt: skip
    assert done.returncode == 125, done.stderr
    assert f"  {HELPER}: {HELPER} is writable by others and not sticky (mode 0777)" in done.stderr


@pytest.mark.parametrize(
    "workload",
    workloads(load_dir(EKS)) + workloads(load_dir(GKE)),
    ids=lambda workload: f"{workload.path.parent.name}/{workload.path.name}",
)
def test_runs_unprivileged(workload: Manifest) -> None:
    spec = pod_spec(workload)
    pod = spec.security_context
    assert pod.run_as_non_root is True
    assert pod.run_as_user and pod.run_as_user != 0 and pod.run_as_group != 0
    assert pod.seccomp_profile.type == "RuntimeDefault"
    for container in [*spec.init_containers, *spec.containers]:
        context = container.security_context
        assert context.allow_privilege_escalation is False
        assert context.read_only_root_filesystem is True
        assert context.capabilities.drop == ["ALL"]
        assert container.resources.limits["memory"]


@pytest.mark.parametrize(
    "workload",
    workloads(load_dir(EKS)) + workloads(load_dir(GKE)),
    ids=lambda workload: f"{workload.path.parent.name}/{workload.path.name}",
)
def test_memory_limits_hold_what_lands_in_memory_backed_volumes(workload: Manifest) -> None:
    """A tmpfs page is charged to the container that wrote it: the tree, to the initContainer."""
    from kubernetes.utils import parse_quantity

    spec = pod_spec(workload)
    volumes = {volume.name: volume.empty_dir for volume in spec.volumes}
    for container in [*spec.init_containers, *spec.containers]:
        writable = [volumes[m.name] for m in container.volume_mounts if not m.read_only]
        in_memory = sum(
            parse_quantity(d.size_limit) for d in writable if d is not None and d.medium == "Memory"
        )
        room_for_the_processes = 32 * 2**20
        limit = parse_quantity(container.resources.limits["memory"])
        assert limit >= in_memory + room_for_the_processes, container.name


@pytest.mark.parametrize(
    "workload",
    workloads(load_dir(EKS)) + workloads(load_dir(GKE)),
    ids=lambda workload: f"{workload.path.parent.name}/{workload.path.name}",
)
def test_the_shared_volume_holds_the_tree_laid(workload: Manifest) -> None:
    """sizeLimit is at least what the webhook gives a pod of the same families: the
    build's part sizes with its margin (secrets_init/webhook/layout.py), so a part
    that grows past an example's volume fails here, not in a pod."""
    from kubernetes.utils import parse_quantity

    from secrets_init.webhook import layout

    spec = pod_spec(workload)
    [init] = spec.init_containers
    families = init.args[2:]
    [mount] = init.volume_mounts
    [shared] = [volume.empty_dir for volume in spec.volumes if volume.name == mount.name]
    assert parse_quantity(shared.size_limit) >= layout.tree_bytes(families), families


def _service_account(directory: Any, workload: Manifest) -> Manifest:
    accounts = [m for m in load_dir(directory) if m.kind == "ServiceAccount"]
    [account] = [
        a
        for a in accounts
        if a.model.metadata.name == pod_spec(workload).service_account_name
        and a.model.metadata.namespace == workload.model.metadata.namespace
    ]
    return account


def _references(directory: Any, family: str) -> list[Any]:
    found = []
    for workload in workloads(load_dir(directory)):
        for container in pod_spec(workload).containers:
            env = env_of(container)
            refs = references_in(container)
            # Every value that looks like a reference is one (a typo would pass through).
            assert len(refs) == sum(v.startswith(("arn:", "gcp:")) for v in env.values())
            assert refs and all(ref.provider.startswith(family) for ref in refs)
            found += [(ref, env) for ref in refs]
    return found


# --- EKS: IRSA and the IAM policy ------------------------------------------


def _statements() -> dict[str, dict[str, Any]]:
    policy = json.loads((EKS / "iam-policy.json").read_text())
    assert policy["Version"] == "2012-10-17"
    by_action: dict[str, dict[str, Any]] = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert "*" not in action and action not in by_action
            resources = statement["Resource"]
            by_action[action] = {
                "resources": {resources} if isinstance(resources, str) else set(resources),
                "condition": statement.get("Condition"),
            }
    return by_action


def test_eks_service_accounts_carry_the_irsa_role() -> None:
    trust = json.loads((EKS / "iam-trust-policy.json").read_text())
    [statement] = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    [conditions] = statement["Condition"].values()
    subjects = {v for k, v in conditions.items() if k.endswith(":sub")}
    for workload in workloads(load_dir(EKS)):
        account = _service_account(EKS, workload)
        role = account.model.metadata.annotations["eks.amazonaws.com/role-arn"]
        assert re.fullmatch(r"arn:aws:iam::[0-9]{12}:role/[\w+=,.@-]+", role)
        meta = account.model.metadata
        # The role trusts exactly this service account, no other in the cluster.
        assert subjects == {f"system:serviceaccount:{meta.namespace}:{meta.name}"}


def test_iam_policy_grants_exactly_the_referenced_secrets_and_parameters() -> None:
    secrets: set[str] = set()
    parameters: set[str] = set()
    regions: set[str] = set()
    for ref, _ in _references(EKS, "aws"):
        target = ref.target
        regions.add(target.region)
        if ref.provider == "aws-secretsmanager":
            # A name without AWS's random 6-character suffix: match that suffix exactly.
            assert not re.search(r"-[A-Za-z0-9]{6}$", target.name), ref.text
            secrets.add(f"{target.arn}-??????")
        else:
            assert ref.provider == "aws-ssm"
            parameters.add(target.arn)

    statements = _statements()
    assert set(statements) == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:BatchGetSecretValue",
        "ssm:GetParameters",
        "ssm:GetParameter",
        "kms:Decrypt",
    }
    assert statements["secretsmanager:GetSecretValue"]["resources"] == secrets
    # BatchGetSecretValue takes no resource ARNs; it returns only the secrets
    # that GetSecretValue is granted on, so "*" widens nothing.
    assert statements["secretsmanager:BatchGetSecretValue"]["resources"] == {"*"}
    assert statements["ssm:GetParameters"]["resources"] == parameters
    assert statements["ssm:GetParameter"]["resources"] == parameters

    kms = statements["kms:Decrypt"]
    [key] = kms["resources"]
    assert re.fullmatch(r"arn:aws:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]{36}", key)
    via = set(kms["condition"]["StringEquals"]["kms:ViaService"])
    assert via == {f"{service}.{region}.amazonaws.com" for service in ("secretsmanager", "ssm")
                   for region in regions}  # fmt: skip
    for action, granted in statements.items():
        if action != "kms:Decrypt":
            assert granted["condition"] is None, action


# --- GKE: Workload Identity and the IAM bindings -----------------------------


def _gcloud_commands() -> list[list[str]]:
    script = GKE / "iam-bindings.sh"
    subprocess.run(["sh", "-n", str(script)], env=child_env(), check=True, timeout=10)
    text = script.read_text().replace("\\\n", " ")
    commands = [shlex.split(line) for line in text.splitlines() if line.strip()]
    commands = [words for words in commands if not words[0].startswith("#")]
    assert commands[0] == ["set", "-eu"]
    assert all(words[0] == "gcloud" for words in commands[1:])
    return commands[1:]


def _flags(words: list[str]) -> dict[str, str]:
    flags = {}
    for flag, value in itertools.pairwise(words):
        if flag.startswith("--"):
            flags[flag] = value
    return flags


def test_gke_bindings_grant_exactly_the_referenced_secrets() -> None:
    [workload] = workloads(load_dir(GKE))
    account = _service_account(GKE, workload)
    google_account = account.model.metadata.annotations["iam.gke.io/gcp-service-account"]
    assert re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9-]+\.iam\.gserviceaccount\.com",
                        google_account)  # fmt: skip
    account_project = google_account.split("@")[1].split(".")[0]

    wanted = set()
    for ref, env in _references(GKE, "google"):
        project = ref.target.project or env.get("GOOGLE_CLOUD_PROJECT")
        assert project, f"{ref.variable}: a short name needs GOOGLE_CLOUD_PROJECT"
        assert ref.target.location is None  # regional secrets would need other bindings
        wanted.add((project, ref.target.secret))

    granted = set()
    identity_users: defaultdict[str, set[str]] = defaultdict(set)
    for words in _gcloud_commands():
        flags = _flags(words)
        if words[1:3] == ["secrets", "add-iam-policy-binding"]:
            assert flags["--role"] == "roles/secretmanager.secretAccessor"
            assert flags["--member"] == f"serviceAccount:{google_account}"
            granted.add((flags["--project"], words[3]))
        elif words[1:4] == ["iam", "service-accounts", "add-iam-policy-binding"]:
            assert flags["--role"] == "roles/iam.workloadIdentityUser"
            identity_users[words[4]].add(flags["--member"])
        else:
            # Nothing else is granted: in particular no project-wide role.
            assert words[1:4] == ["iam", "service-accounts", "create"], words
            assert f"{words[4]}@{flags['--project']}.iam.gserviceaccount.com" == google_account
    assert granted == wanted

    meta = account.model.metadata
    member = f"serviceAccount:{account_project}.svc.id.goog[{meta.namespace}/{meta.name}]"
    assert identity_users == {google_account: {member}}
