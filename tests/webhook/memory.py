"""A Cluster and an Images answering from memory, for the pure-function tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from secrets_init.providers import entry_for
from secrets_init.webhook.cluster import CONFIG_MAP, ReadError
from secrets_init.webhook.mutate import ImageLookupError
from secrets_init.webhook.program import ImageConfig
from testing.pods import CONFIG_MAPS, SECRETS


@dataclass
class MemoryCluster:
    failing: dict[str, ReadError] = field(default_factory=dict)  # object name -> error
    reads: list[tuple[str, str, str]] = field(default_factory=list)
    pull_secrets: dict[str, bytes] = field(default_factory=dict)  # name -> .dockerconfigjson

    def reference_families(self, kind: str, namespace: str, name: str) -> dict[str, str]:
        self.reads.append((kind, namespace, name))
        if name in self.failing:
            raise self.failing[name]
        objects = CONFIG_MAPS if kind == CONFIG_MAP else SECRETS
        if name not in objects:
            raise ReadError("404 Not Found", 404)
        found = {k: entry_for(v) for k, v in objects[name].items()}
        return {k: entry.family for k, entry in found.items() if entry is not None}

    def docker_config(self, namespace: str, name: str) -> bytes:
        if name in self.failing:
            raise self.failing[name]
        if name not in self.pull_secrets:
            raise ReadError("HTTP 404 Not Found", 404)
        return self.pull_secrets[name]


@dataclass
class MemoryImages:
    configs: dict[str, ImageConfig] = field(default_factory=dict)
    asked: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def config(self, image: str, namespace: str, pull_secrets: Sequence[str]) -> ImageConfig:
        self.asked.append((image, namespace, tuple(pull_secrets)))
        if image not in self.configs:
            raise ImageLookupError(f"{image}: manifest unknown")
        return self.configs[image]
