"""OCI image layouts written by hand, for skopeo to push: nothing is pulled from anywhere.

An image here is one small layer and a config whose Entrypoint and Cmd the
tests choose; an index groups images of several platforms.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    entrypoint: tuple[str, ...] | None = ()
    cmd: tuple[str, ...] | None = ()


class Layout:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (directory / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self._refs: list[dict[str, Any]] = []

    def _blob(self, data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.directory / "blobs" / "sha256" / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data), **extra}

    def _manifest(self, platform: Platform) -> dict[str, Any]:
        tar = io.BytesIO()
        with tarfile.open(fileobj=tar, mode="w") as archive:
            content = f"{platform.os}/{platform.architecture}\n".encode()
            info = tarfile.TarInfo("platform.txt")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        raw = tar.getvalue()
        layer = self._blob(gzip.compress(raw, mtime=0), LAYER)
        settings: dict[str, Any] = {}
        if platform.entrypoint is not None:
            settings["Entrypoint"] = list(platform.entrypoint) or None
        if platform.cmd is not None:
            settings["Cmd"] = list(platform.cmd) or None
        config = {
            "architecture": platform.architecture,
            "os": platform.os,
            "config": settings,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(raw).hexdigest()}"]},
        }
        config_blob = self._blob(json.dumps(config).encode(), CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config_blob,
            "layers": [layer],
        }
        platform_field = {"os": platform.os, "architecture": platform.architecture}
        return self._blob(json.dumps(manifest).encode(), MANIFEST, platform=platform_field)

    def add(self, tag: str, *platforms: Platform) -> None:
        """One image (one platform) or an index (several) under `tag`."""
        if len(platforms) == 1:
            descriptor = self._manifest(platforms[0])
            descriptor.pop("platform")
        else:
            index = {
                "schemaVersion": 2,
                "mediaType": INDEX,
                "manifests": [self._manifest(p) for p in platforms],
            }
            descriptor = self._blob(json.dumps(index).encode(), INDEX)
        descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self._refs.append(descriptor)
        (self.directory / "index.json").write_text(
            json.dumps({"schemaVersion": 2, "manifests": self._refs})
        )
