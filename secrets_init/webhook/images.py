"""Image configs by image name, cached: digests forever, tags for a few minutes.

An image is looked up in its registry once however many reviews ask at the
same moment: the first asker looks it up, the others wait for its answer. The
cache is keyed by the image name alone; an image's ENTRYPOINT and CMD are not
secret, and a pod that may not pull the image will not start anyway.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from secrets_init.webhook import imageref, pullsecrets
from secrets_init.webhook.cluster import Cluster, ReadError
from secrets_init.webhook.metrics import Metrics
from secrets_init.webhook.mutate import ImageLookupError
from secrets_init.webhook.program import ImageConfig
from secrets_init.webhook.registry import Registry, RegistryError

MAX_ENTRIES = 4096


@dataclass(frozen=True)
class _Entry:
    config: ImageConfig
    expires: float  # time.monotonic(); inf for a digest


class ImageConfigs:
    def __init__(
        self,
        registry: Registry,
        cluster: Cluster,
        metrics: Metrics,
        tag_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._cluster = cluster
        self._metrics = metrics
        self._tag_seconds = tag_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._pending: dict[str, threading.Event] = {}

    def config(self, image: str, namespace: str, pull_secrets: Sequence[str]) -> ImageConfig:
        try:
            ref = imageref.parse(image)
        except imageref.ImageRefError as error:
            raise ImageLookupError(str(error)) from None
        key = str(ref)
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry.expires > self._clock():
                    self._entries.move_to_end(key)
                    self._metrics.cache_hit()
                    return entry.config
                waiting = self._pending.get(key)
                if waiting is None:
                    self._pending[key] = threading.Event()
                    break
            waiting.wait(self._registry.timeout + 1)
            with self._lock:
                if key in self._pending and self._pending[key] is waiting:
                    break  # the first asker is stuck: look it up too, with our pull secrets
                entry = self._entries.get(key)
                if entry is None:
                    break  # it failed, maybe for want of a pull secret we have
        try:
            config = self._lookup(ref, namespace, pull_secrets)
        finally:
            with self._lock:
                done = self._pending.pop(key, None)
            if done is not None:
                done.set()
        return config

    def _lookup(
        self, ref: imageref.ImageRef, namespace: str, pull_secrets: Sequence[str]
    ) -> ImageConfig:
        unread: list[str] = []
        credentials = None
        for name in pull_secrets:
            try:
                docker_config = self._cluster.docker_config(namespace, name)
            except ReadError as error:
                unread.append(f"{name} ({error})")
                continue
            credentials = pullsecrets.for_registry(docker_config, ref.registry)
            if credentials is not None:
                break
        try:
            config = self._registry.image_config(ref, credentials)
        except RegistryError as error:
            self._metrics.registry_lookup("error")
            note = f"; pull secrets not read: {', '.join(unread)}" if unread else ""
            raise ImageLookupError(f"{error}{note}") from None
        self._metrics.registry_lookup("ok")
        expires = float("inf") if ref.by_digest else self._clock() + self._tag_seconds
        with self._lock:
            self._entries[str(ref)] = _Entry(config, expires)
            self._entries.move_to_end(str(ref))
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        return config
