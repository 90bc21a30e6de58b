"""End to end: a pod the webhook mutated, run as Kubernetes would, gets its AWS secret.

The webhook process reviews a pod whose container sets no command and whose
env holds only a reference; it looks the image's ENTRYPOINT/CMD up in
docker-registry (with the pull secret it reads through the small API server)
and answers a patch. The patched pod is played by testing/kubelet.py
with podman: the secrets-init image (built from the Dockerfile) copies itself
into the shared volume, then the application image, non-root and with a
read-only root, runs secrets-init from that volume, which fetches the secret
from moto and runs the image's own program with it.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from testing import pods
from testing.kube_api import populated_api
from testing.kubelet import Kubelet, expand
from testing.moto import DUMMY_CREDENTIALS, Aws
from testing.registry import PUSH_PASSWORD, PUSHER, DockerRegistry, docker_config
from testing.tls import CertificateAuthority
from testing.webhook_process import serving
from tests.container.conftest import binary, busybox, image, podman  # noqa: F401 (fixtures)
from tests.container.podman import Podman
from tests.webhook.checks import assert_valid, patched

pytestmark = pytest.mark.container

# The image's own program, as its ENTRYPOINT and CMD: it prints what it got.
ENTRYPOINT = ["/bin/busybox", "sh", "-c"]
CMD = ['echo "DB=$DB"; echo "ppid=$PPID"; echo "uid=$(/bin/busybox id -u)"; echo "args=$0"', "none"]


def test_kubelet_expansion() -> None:
    assert expand("$$(A) $(A) $(B) $$ $x", {"A": "1"}) == "$(A) 1 $(B) $ $x"


def test_a_mutated_pod_runs_and_its_program_gets_the_secret(
    podman: Podman,  # noqa: F811
    image: str,  # noqa: F811
    busybox: Path,  # noqa: F811
    ca: CertificateAuthority,
    aws: Aws,
    moto_url: str,
    tmp_path: Path,
) -> None:
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed (scripts/test installs it)")
    context = tmp_path / "app"
    context.mkdir()
    shutil.copy2(busybox, context / "busybox")
    (context / "Containerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\nUSER 65532:65532\n"
        f"ENTRYPOINT {json.dumps(ENTRYPOINT)}\nCMD {json.dumps(CMD)}\n"
    )
    local = podman.build(context, f"localhost/e2e-app:{uuid.uuid4().hex[:8]}")
    registry = DockerRegistry(ca, tmp_path / "registry")
    try:
        remote = f"{registry.host}/apps/e2e:1.0"
        podman(
            "push", "--cert-dir", str(registry.cert_dir), "--creds", f"{PUSHER}:{PUSH_PASSWORD}",
            local, f"docker://{remote}",
        )  # fmt: skip
        arn = aws.secret("e2e/db", "pw-from-moto")
        pod = pods.pod(
            pods.container(
                image=remote,
                env=pods.env(
                    DB=arn,
                    AWS_ENDPOINT_URL=moto_url,
                    AWS_EC2_METADATA_DISABLED="true",
                    AWS_REGION="us-east-1",
                    **DUMMY_CREDENTIALS,
                ),
            )
        )
        pod["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
        with populated_api(ca) as api:
            api.add_pull_secret("orders", "regcred", docker_config(registry.host))
            with serving(ca, api, tmp_path, {"SECRETS_INIT_WEBHOOK_IMAGE": image}) as webhook:
                response = webhook.review(pods.review(pod))
                assert webhook.stop() == 0, webhook.output()
    finally:
        registry.stop()
    after = patched(pod, response)
    assert_valid(after)
    app = after["spec"]["containers"][0]
    assert app["args"][:3] == ENTRYPOINT  # from the registry

    done = Kubelet(podman, tmp_path, {image: image, remote: local}).run(after)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "DB=pw-from-moto" in lines, (
        done.stdout,
        done.stderr,
    )  # the secret, fetched by secrets-init, in the program
    assert "ppid=1" in lines  # secrets-init is PID 1 and the program its child
    assert "uid=1000" in lines  # the pod's non-root user
    assert "args=none" in lines  # the image's CMD, kept as it was ($ escaped, then expanded)
    assert "pw-from-moto" not in done.stderr
