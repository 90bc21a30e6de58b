"""ENTRYPOINT and CMD from a real registry: Debian's docker-registry on loopback with TLS,
images pushed by skopeo from OCI layouts written by hand.

One registry asks for HTTP Basic (htpasswd) and holds a private image; the
other hands out bearer tokens, anonymous ones for pull, from a token service.
"""

from __future__ import annotations

import json
import shutil
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from secrets_init.webhook import imageref
from secrets_init.webhook.cluster import ReadError
from secrets_init.webhook.images import ImageConfigs
from secrets_init.webhook.metrics import Metrics
from secrets_init.webhook.mutate import ImageLookupError
from secrets_init.webhook.program import ImageConfig
from secrets_init.webhook.registry import Registry, RegistryError
from testing import pods
from testing.kube_api import populated_api
from testing.loopback import free_port
from testing.oci import Layout, Platform
from testing.registry import PASSWORD, USER, DockerRegistry, TokenService, docker_config
from testing.tls import CertificateAuthority
from testing.webhook_process import serving
from tests.webhook.checks import assert_valid, patched
from tests.webhook.memory import MemoryCluster

PLAIN = ImageConfig(("/app/server",), ("--port", "8080"))


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        import os

        message = f"{tool} is not installed (scripts/test installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Registries:
    basic: DockerRegistry
    bearer: DockerRegistry
    tokens: TokenService
    ca: CertificateAuthority
    digest: str  # of bearer's apps/plain:1.0


@pytest.fixture(scope="module")
def registries(
    ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registries]:
    for tool in ("docker-registry", "skopeo", "htpasswd"):
        _require(tool)
    root = tmp_path_factory.mktemp("registries")
    layout = Layout(root / "layout")
    layout.add("1.0", Platform(entrypoint=PLAIN.entrypoint, cmd=PLAIN.cmd))
    layout.add(
        "2.0",
        Platform("linux", "amd64", entrypoint=("/amd64/app",), cmd=("serve",)),
        Platform("linux", "arm64", entrypoint=("/arm64/app",), cmd=("serve",)),
    )
    layout.add("cmd-only", Platform(entrypoint=None, cmd=("/bin/run", "$HOME")))
    tokens = TokenService(ca, root)
    basic = DockerRegistry(ca, root / "basic")
    bearer = DockerRegistry(ca, root / "bearer", tokens=tokens)
    try:
        basic.push(layout.directory, "1.0", "private/app")
        basic.push(layout.directory, "1.0", "private/other")
        bearer.push(layout.directory, "1.0", "apps/plain")
        bearer.push(layout.directory, "2.0", "apps/multi", all_platforms=True)
        bearer.push(layout.directory, "cmd-only", "apps/cmd")
        index = json.loads((layout.directory / "index.json").read_text())
        digest = index["manifests"][0]["digest"]
        yield Registries(basic, bearer, tokens, ca, digest)
    finally:
        basic.stop()
        bearer.stop()
        tokens.close()


def _registry(
    ca: CertificateAuthority, platform: str = "linux/amd64", timeout: float = 10
) -> Registry:
    return Registry(platform, timeout, ssl.create_default_context(cafile=str(ca.path)))


def test_anonymous_bearer_token(registries: Registries) -> None:
    ref = imageref.parse(f"{registries.bearer.host}/apps/plain:1.0")
    assert _registry(registries.ca).image_config(ref, None) == PLAIN
    assert {"user": None, "scope": "repository:apps/plain:pull"} in registries.tokens.requests


def test_by_digest(registries: Registries) -> None:
    ref = imageref.parse(f"{registries.bearer.host}/apps/plain@{registries.digest}")
    assert ref.by_digest
    assert _registry(registries.ca).image_config(ref, None) == PLAIN


def test_cmd_only_image(registries: Registries) -> None:
    ref = imageref.parse(f"{registries.bearer.host}/apps/cmd:cmd-only")
    assert _registry(registries.ca).image_config(ref, None) == ImageConfig(
        (), ("/bin/run", "$HOME")
    )


@pytest.mark.parametrize(
    ("platform", "entrypoint"), [("linux/amd64", "/amd64/app"), ("linux/arm64", "/arm64/app")]
)
def test_multi_platform_index(registries: Registries, platform: str, entrypoint: str) -> None:
    ref = imageref.parse(f"{registries.bearer.host}/apps/multi:2.0")
    config = _registry(registries.ca, platform).image_config(ref, None)
    assert config == ImageConfig((entrypoint,), ("serve",))


def test_a_platform_the_index_lacks(registries: Registries) -> None:
    ref = imageref.parse(f"{registries.bearer.host}/apps/multi:2.0")
    with pytest.raises(
        RegistryError, match=r"no linux/s390x image \(it has linux/amd64, linux/arm64\)"
    ):
        _registry(registries.ca, "linux/s390x").image_config(ref, None)


def test_private_image_with_adocker_config(registries: Registries) -> None:
    from secrets_init.webhook import pullsecrets

    ref = imageref.parse(f"{registries.basic.host}/private/app:1.0")
    credentials = pullsecrets.for_registry(docker_config(registries.basic.host), ref.registry)
    assert credentials is not None and PASSWORD not in repr(credentials)
    assert _registry(registries.ca).image_config(ref, credentials) == PLAIN


def test_private_image_without_or_with_wrong_credentials(registries: Registries) -> None:
    from secrets_init.webhook.pullsecrets import Credentials

    ref = imageref.parse(f"{registries.basic.host}/private/app:1.0")
    with pytest.raises(RegistryError, match="requires credentials and no pull secret"):
        _registry(registries.ca).image_config(ref, None)
    with pytest.raises(RegistryError, match="refused the pull secret's credentials") as caught:
        _registry(registries.ca).image_config(ref, Credentials(USER, "wrong-password-9"))
    assert "wrong-password-9" not in str(caught.value)


def test_bearer_with_credentials(registries: Registries) -> None:
    from secrets_init.webhook.pullsecrets import Credentials

    ref = imageref.parse(f"{registries.bearer.host}/apps/plain:1.0")
    assert _registry(registries.ca).image_config(ref, Credentials(USER, PASSWORD)) == PLAIN
    assert {"user": USER, "scope": "repository:apps/plain:pull"} in registries.tokens.requests
    with pytest.raises(
        RegistryError,
        match=r"refused the pull secret's credentials \(HTTP 401 from its token service\)",
    ):
        _registry(registries.ca).image_config(ref, Credentials(USER, "nope"))


def test_a_missing_tag(registries: Registries) -> None:
    ref = imageref.parse(f"{registries.bearer.host}/apps/plain:9.9")
    with pytest.raises(RegistryError, match=r"was not found \(HTTP 404 MANIFEST_UNKNOWN\)"):
        _registry(registries.ca).image_config(ref, None)


def test_an_untrusted_certificate(registries: Registries) -> None:
    ref = imageref.parse(f"{registries.bearer.host}/apps/plain:1.0")
    with pytest.raises(RegistryError, match=r"not trusted .* SSL_CERT_FILE"):
        Registry("linux/amd64", 10, ssl.create_default_context()).image_config(ref, None)


def test_a_registry_that_is_down(ca: CertificateAuthority) -> None:
    ref = imageref.parse(f"127.0.0.1:{free_port()}/apps/plain:1.0")
    with pytest.raises(RegistryError, match="unreachable"):
        _registry(ca).image_config(ref, None)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_tags_for_a_while_digests_forever(registries: Registries) -> None:
    clock = _Clock()
    metrics = Metrics()
    images = ImageConfigs(
        _registry(registries.ca), MemoryCluster(), metrics, tag_seconds=300, clock=clock
    )
    tag = f"{registries.bearer.host}/apps/plain:1.0"
    digest = f"{registries.bearer.host}/apps/plain@{registries.digest}"
    before = registries.bearer.requests("/v2/apps/plain/manifests/")
    for _ in range(3):
        assert images.config(tag, "orders", []) == PLAIN
        assert images.config(digest, "orders", []) == PLAIN
    assert registries.bearer.requests("/v2/apps/plain/manifests/") - before == 2
    clock.now += 301
    assert images.config(tag, "orders", []) == PLAIN
    assert images.config(digest, "orders", []) == PLAIN
    assert registries.bearer.requests("/v2/apps/plain/manifests/") - before == 3
    text = metrics.render()
    assert 'secrets_init_webhook_registry_lookups_total{result="ok"} 3' in text
    assert "secrets_init_webhook_registry_cache_hits_total 5" in text


def test_concurrent_reviews_look_an_image_up_once(registries: Registries) -> None:
    metrics = Metrics()
    images = ImageConfigs(_registry(registries.ca), MemoryCluster(), metrics, tag_seconds=300)
    image = f"{registries.bearer.host}/apps/multi:2.0"
    before = registries.bearer.requests("/v2/apps/multi/manifests/2.0")
    results: list[Any] = []
    barrier = threading.Barrier(20)

    def ask() -> None:
        barrier.wait()
        results.append(images.config(image, "orders", []))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [ImageConfig(("/amd64/app",), ("serve",))] * 20
    assert registries.bearer.requests("/v2/apps/multi/manifests/2.0") - before == 1
    assert 'secrets_init_webhook_registry_lookups_total{result="ok"} 1' in metrics.render()


def test_pull_secrets_are_tried_in_order_and_failures_named(registries: Registries) -> None:
    host = registries.basic.host
    cluster = MemoryCluster(
        failing={"forbidden": ReadError("HTTP 403 Forbidden", 403)},
        pull_secrets={"other": docker_config("elsewhere.example"), "right": docker_config(host)},
    )
    images = ImageConfigs(_registry(registries.ca), cluster, Metrics(), tag_seconds=0)
    image = f"{host}/private/app:1.0"
    assert images.config(image, "orders", ["forbidden", "other", "right"]) == PLAIN
    with pytest.raises(ImageLookupError) as caught:
        images.config(image, "orders", ["forbidden", "other"])
    message = str(caught.value)
    assert "requires credentials" in message
    assert "pull secrets not read: forbidden (HTTP 403 Forbidden)" in message


def test_the_webhook_process_with_real_registries(registries: Registries, tmp_path: Path) -> None:
    """The whole path: review -> pull secret through the API -> registry -> patch, or a denial."""
    basic, bearer = registries.basic.host, registries.bearer.host

    def shape(image: str, secrets: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
        pod = pods.pod(pods.container(image=image, env=pods.env(DB=pods.SM), **fields))
        if secrets:
            pod["spec"]["imagePullSecrets"] = [{"name": name} for name in secrets]
        return pod

    with populated_api(registries.ca) as api:
        api.add_pull_secret("orders", "regcred", docker_config(basic))
        with serving(registries.ca, api, tmp_path) as webhook:
            allowed = {
                "args-only": (
                    shape(f"{bearer}/apps/plain:1.0", args=["--verbose"]),
                    ["/app/server", "--verbose"],
                ),
                "index": (shape(f"{bearer}/apps/multi:2.0"), ["/amd64/app", "serve"]),
                "cmd-only": (shape(f"{bearer}/apps/cmd:cmd-only"), ["/bin/run", "$$HOME"]),
                "private": (
                    shape(f"{basic}/private/app:1.0", ("regcred",)),
                    ["/app/server", "--port", "8080"],
                ),
            }
            for name, (pod, argv) in allowed.items():
                response = webhook.review(pods.review(pod))
                after = patched(pod, response)
                assert after["spec"]["containers"][0]["args"] == argv, name
                assert_valid(after)
            denied = {
                "no pull secret": (shape(f"{basic}/private/other:1.0"), "requires credentials"),
                "missing tag": (
                    shape(f"{bearer}/apps/plain:0.0"),
                    "was not found (HTTP 404 MANIFEST_UNKNOWN)",
                ),
                "registry down": (shape(f"127.0.0.1:{free_port()}/apps/plain:1.0"), "unreachable"),
            }
            for name, (pod, cause) in denied.items():
                response = webhook.review(pods.review(pod))
                assert response["allowed"] is False, name
                message = response["status"]["message"]
                assert cause in message and "Set `command`" in message, (name, message)
            before = registries.bearer.requests("/v2/apps/plain/manifests/1.0")
            for _ in range(5):
                webhook.review(pods.review(allowed["args-only"][0]))
            assert registries.bearer.requests("/v2/apps/plain/manifests/1.0") == before
            assert webhook.metric("secrets_init_webhook_registry_cache_hits_total") == 5
            assert webhook.metric('secrets_init_webhook_registry_lookups_total{result="ok"}') == 4
            assert (
                webhook.metric('secrets_init_webhook_registry_lookups_total{result="error"}') == 3
            )
            assert webhook.metric('secrets_init_webhook_reviews_total{outcome="denied"}') == 3
            assert PASSWORD not in webhook.output()
            assert webhook.stop() == 0, webhook.output()
