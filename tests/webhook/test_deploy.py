"""deploy/webhook: valid objects that fit together, and the promises of the issue.

No cluster here: each overlay is rendered (tests/webhook/kustomize.py, and
`kubectl kustomize` too where kubectl is installed), every built-in object is
validated against the official schema, and the pieces are checked against
each other and against the webhook's own code (labels, options, port).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from secrets_init.webhook import config, selection
from testing.process import ROOT
from tests.webhook import pss
from tests.webhook.checks import KUBERNETES_VERSION
from tests.webhook.kustomize import render

DEPLOY = ROOT / "deploy" / "webhook"
OVERLAYS = ("cert-manager", "certgen")
NAMESPACE = "secrets-init"
CERT_MANAGER_KINDS = ("Certificate", "Issuer")


def _one(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    [found] = [
        d
        for d in documents
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    return found


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(DEPLOY / request.param)


def test_every_file_is_part_of_an_overlay() -> None:
    used = {DEPLOY / "opt-in" / "kustomization.yaml"}
    for name in OVERLAYS:
        for directory in (DEPLOY / name, DEPLOY / "base"):
            kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
            used.add(directory / "kustomization.yaml")
            used |= {directory / r for r in kustomization["resources"] if not r.startswith("..")}
    assert {p for p in DEPLOY.rglob("*") if p.is_file()} == used


def test_objects_are_valid(overlay: list[dict[str, Any]]) -> None:
    for document in overlay:
        if document["kind"] in CERT_MANAGER_KINDS:
            assert document["apiVersion"] == "cert-manager.io/v1"
            continue
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        if document["kind"] not in ("ClusterRole", "ClusterRoleBinding", "Namespace",
                                    "MutatingWebhookConfiguration"):  # fmt: skip
            assert document["metadata"]["namespace"] == NAMESPACE, document["metadata"]


def test_with_kubectl_kustomize_where_installed(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (no Debian package); kustomize.py renders instead")
    cases = {name: DEPLOY / name for name in OVERLAYS}
    opt_in = tmp_path / "opt-in"
    opt_in.mkdir()
    (opt_in / "kustomization.yaml").write_text(
        f"resources: [{os.path.relpath(DEPLOY / 'cert-manager', opt_in)}]\n"
        f"components: [{os.path.relpath(DEPLOY / 'opt-in', opt_in)}]\n"
    )
    cases["opt-in"] = opt_in
    for name, directory in cases.items():
        done = subprocess.run(
            [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        theirs = sorted(yaml.safe_load_all(done.stdout), key=_identity)
        assert theirs == sorted(render(directory), key=_identity), name


def _identity(document: dict[str, Any]) -> tuple[str, str]:
    return document["kind"], document["metadata"]["name"]


def test_deployment(overlay: list[dict[str, Any]]) -> None:
    deployment = _one(overlay, "Deployment")
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    pdb = _one(overlay, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == labels and pdb["spec"]["minAvailable"] == 1
    assert pss.violations({"spec": template["spec"]}) == []
    [container] = template["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"]["memory"]

    # The environment is the webhook's own option twins, and they parse.
    env = {v["name"]: v.get("value", "from-the-downward-api") for v in container["env"]}
    options = config.parse([], env)
    assert "secrets-init" in options.image
    assert options.port == container["ports"][0]["containerPort"] == 8443
    namespace_variable = _one_env(container, "SECRETS_INIT_WEBHOOK_NAMESPACE")
    assert namespace_variable["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"

    # The certificate files are where the options say, from the Secret the issuer fills.
    [mount] = container["volumeMounts"]
    assert mount["readOnly"] is True
    assert (
        Path(options.tls_cert_file).parent
        == Path(options.tls_key_file).parent
        == Path(mount["mountPath"])
    )
    [volume] = template["spec"]["volumes"]
    assert volume["name"] == mount["name"]
    files = {item["path"] for item in volume["secret"].get("items", [])}
    assert files in (set(), {Path(options.tls_cert_file).name, Path(options.tls_key_file).name})
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {
            "path": "/healthz",
            "port": "https",
            "scheme": "HTTPS",
        }

    service = _one(overlay, "Service")
    assert service["spec"]["selector"] == labels
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]


def _one_env(container: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [v for v in container["env"] if v["name"] == name]
    return found


def test_webhook_configuration(overlay: list[dict[str, Any]]) -> None:
    [hook] = _one(overlay, "MutatingWebhookConfiguration")["webhooks"]
    assert hook["sideEffects"] == "None"
    assert hook["failurePolicy"] == "Fail"
    assert hook["timeoutSeconds"] <= 10
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    service = _one(overlay, "Service")
    assert hook["clientConfig"]["service"] == {
        "name": service["metadata"]["name"],
        "namespace": NAMESPACE,
        "path": "/mutate",
        "port": service["spec"]["ports"][0]["port"],
    }
    # The webhook's own label, in the code and in the selectors.
    opt_out = {"key": selection.LABEL, "operator": "NotIn", "values": [selection.DISABLED]}
    namespaces = hook["namespaceSelector"]["matchExpressions"]
    assert opt_out in namespaces
    assert {
        "key": "kubernetes.io/metadata.name",
        "operator": "NotIn",
        "values": [*selection.ALWAYS_EXCLUDED, NAMESPACE],
    } in namespaces
    assert hook["objectSelector"]["matchExpressions"] == [opt_out]
    [condition] = hook["matchConditions"]
    assert "has(c.env) || has(c.envFrom)" in condition["expression"]
    namespace = _one(overlay, "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"][selection.LABEL] == selection.DISABLED
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_opt_in_component() -> None:
    rendered = render(DEPLOY / "cert-manager")
    documents = rendered  # the component applied by hand, as an overlay would
    component = yaml.safe_load((DEPLOY / "opt-in" / "kustomization.yaml").read_text())
    from tests.webhook.kustomize import _patched

    [hook] = _one(_patched(documents, component["patches"]), "MutatingWebhookConfiguration")[
        "webhooks"
    ]
    assert {"key": selection.LABEL, "operator": "In", "values": ["enabled"]} in hook[
        "namespaceSelector"
    ]["matchExpressions"]


def test_rbac_is_get_on_configmaps_and_secrets_only(overlay: list[dict[str, Any]]) -> None:
    role = _one(overlay, "ClusterRole", "secrets-init-webhook")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get"]}
    ]
    binding = _one(overlay, "ClusterRoleBinding", "secrets-init-webhook")
    deployment = _one(overlay, "Deployment")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": deployment["spec"]["template"]["spec"]["serviceAccountName"],
            "namespace": NAMESPACE,
        }
    ]


def _service_names(overlay: list[dict[str, Any]]) -> set[str]:
    name = _one(overlay, "Service")["metadata"]["name"]
    return {f"{name}.{NAMESPACE}.svc"}


def test_cert_manager_certificate() -> None:
    overlay = render(DEPLOY / "cert-manager")
    certificate = _one(overlay, "Certificate")
    volume = _one(overlay, "Deployment")["spec"]["template"]["spec"]["volumes"][0]
    assert certificate["spec"]["secretName"] == volume["secret"]["secretName"]
    assert _service_names(overlay) <= set(certificate["spec"]["dnsNames"])
    issuer = _one(overlay, "Issuer")
    assert certificate["spec"]["issuerRef"] == {
        "name": issuer["metadata"]["name"],
        "kind": "Issuer",
    }
    annotations = _one(overlay, "MutatingWebhookConfiguration")["metadata"]["annotations"]
    assert (
        annotations["cert-manager.io/inject-ca-from"]
        == f"{NAMESPACE}/{certificate['metadata']['name']}"
    )


def test_certgen_jobs() -> None:
    overlay = render(DEPLOY / "certgen")
    create = _one(overlay, "Job", "secrets-init-webhook-certgen-create")
    patch = _one(overlay, "Job", "secrets-init-webhook-certgen-patch")
    volume = _one(overlay, "Deployment")["spec"]["template"]["spec"]["volumes"][0]
    secret = volume["secret"]["secretName"]
    [create_container] = create["spec"]["template"]["spec"]["containers"]
    [patch_container] = patch["spec"]["template"]["spec"]["containers"]
    args = create_container["args"]
    hosts = set(next(a for a in args if a.startswith("--host=")).split("=", 1)[1].split(","))
    assert _service_names(overlay) <= hosts
    assert (
        f"--secret-name={secret}" in args and f"--secret-name={secret}" in patch_container["args"]
    )
    webhook = _one(overlay, "MutatingWebhookConfiguration")["metadata"]["name"]
    assert f"--webhook-name={webhook}" in patch_container["args"]
    assert "--patch-mutating=true" in patch_container["args"]
    for job in (create, patch):
        assert pss.violations({"spec": job["spec"]["template"]["spec"]}) == []
    # The tool's key names mapped to the file names the webhook is given.
    assert volume["secret"]["items"] == [
        {"key": "cert", "path": "tls.crt"},
        {"key": "key", "path": "tls.key"},
    ]
    role = _one(overlay, "ClusterRole", "secrets-init-webhook-certgen")
    assert role["rules"][0]["resourceNames"] == [webhook]


def test_dockerfile_webhook_target() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stage = text.split("AS webhook\n", 1)[1].split("\nFROM ", 1)[0]
    assert 'pip install --no-cache-dir ".[webhook]"' in stage
    assert "\nUSER 65532:65532\n" in stage
    assert 'ENTRYPOINT ["secrets-init-webhook"]' in stage
