"""Image names as a container runtime reads them: `nginx` is docker.io/library/nginx:latest."""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_REPOSITORY = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


class ImageRefError(ValueError):
    """Not an image name a runtime would pull."""


@dataclass(frozen=True)
class ImageRef:
    registry: str  # host[:port]; Docker Hub is "docker.io"
    repository: str
    reference: str  # a tag, or a digest (algorithm:hex)

    @property
    def by_digest(self) -> bool:
        return ":" in self.reference

    @property
    def api_host(self) -> str:
        return "registry-1.docker.io" if self.registry == DOCKER_HUB else self.registry

    def __str__(self) -> str:
        separator = "@" if self.by_digest else ":"
        return f"{self.registry}/{self.repository}{separator}{self.reference}"


def parse(image: str) -> ImageRef:
    name, at, digest = image.partition("@")
    if at and not _DIGEST.match(digest):
        raise ImageRefError(f"{image!r}: malformed digest")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    repository, colon, tag = path.rpartition(":") if ":" in path else (path, "", "")
    if colon and not _TAG.match(tag):
        raise ImageRefError(f"{image!r}: malformed tag")
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not _REPOSITORY.match(repository):
        raise ImageRefError(f"{image!r}: malformed repository name")
    return ImageRef(registry, repository, digest if at else (tag or "latest"))
