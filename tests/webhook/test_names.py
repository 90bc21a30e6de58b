"""Image names as runtimes read them, and pull secrets matched to registries."""

from __future__ import annotations

import base64
import json

import pytest

from secrets_init.webhook import imageref, pullsecrets
from secrets_init.webhook.imageref import ImageRef, ImageRefError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx", ImageRef("docker.io", "library/nginx", "latest")),
        ("nginx:1.27", ImageRef("docker.io", "library/nginx", "1.27")),
        ("bitnami/redis:7", ImageRef("docker.io", "bitnami/redis", "7")),
        ("ghcr.io/o/app:v1", ImageRef("ghcr.io", "o/app", "v1")),
        ("localhost/app", ImageRef("localhost", "app", "latest")),
        ("127.0.0.1:5000/a/b/c:t", ImageRef("127.0.0.1:5000", "a/b/c", "t")),
        (f"ghcr.io/o/app@{DIGEST}", ImageRef("ghcr.io", "o/app", DIGEST)),
        (f"ghcr.io/o/app:v1@{DIGEST}", ImageRef("ghcr.io", "o/app", DIGEST)),  # digest wins
    ],
)
def test_parse(image: str, expected: ImageRef) -> None:
    assert imageref.parse(image) == expected


def test_docker_hub_api_host_and_text() -> None:
    ref = imageref.parse("nginx")
    assert ref.api_host == "registry-1.docker.io"
    assert str(ref) == "docker.io/library/nginx:latest"
    assert str(imageref.parse(f"x.io/a@{DIGEST}")) == f"x.io/a@{DIGEST}"


@pytest.mark.parametrize("image", ["", "UPPER/case", "x.io/a@sha256:12", "x.io/a:bad tag", "a//b"])
def test_malformed(image: str) -> None:
    with pytest.raises(ImageRefError):
        imageref.parse(image)


def _config(auths: dict[str, dict[str, str]]) -> bytes:
    return json.dumps({"auths": auths}).encode()


@pytest.mark.parametrize(
    ("key", "registry"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("ghcr.io", "ghcr.io"),
        ("https://h.example:5000/v2/", "h.example:5000"),
    ],
)
def test_pull_secret_keys_match_by_host(key: str, registry: str) -> None:
    auth = base64.b64encode(b"user:pa:ss").decode()
    credentials = pullsecrets.for_registry(_config({key: {"auth": auth}}), registry)
    assert credentials == pullsecrets.Credentials("user", "pa:ss")
    assert "pa:ss" not in repr(credentials)


def test_pull_secret_fields_and_misses() -> None:
    config = _config({"ghcr.io": {"username": "u", "password": "p"}})
    assert pullsecrets.for_registry(config, "ghcr.io") == pullsecrets.Credentials("u", "p")
    assert pullsecrets.for_registry(config, "quay.io") is None
    assert pullsecrets.for_registry(b"not json", "ghcr.io") is None
    assert pullsecrets.for_registry(_config({"ghcr.io": {"auth": "!!"}}), "ghcr.io") is None
