"""Counters and a latency histogram, served as Prometheus text (exposition format 0.0.4).

A dozen numbers under one lock need no client library.
"""

from __future__ import annotations

import threading
from collections import Counter

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reviews: Counter[str] = Counter()
        self._buckets = [0] * len(BUCKETS)
        self._sum = 0.0
        self._count = 0
        self._lookups: Counter[str] = Counter()
        self._cache_hits = 0
        self._reloads: Counter[str] = Counter()

    def review(self, outcome: str, seconds: float) -> None:
        with self._lock:
            self._reviews[outcome] += 1
            self._sum += seconds
            self._count += 1
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self._buckets[index] += 1

    def registry_lookup(self, result: str) -> None:
        """One lookup that went to a registry: `ok` or `error`."""
        with self._lock:
            self._lookups[result] += 1

    def cache_hit(self) -> None:
        with self._lock:
            self._cache_hits += 1

    def certificate_reload(self, result: str) -> None:
        with self._lock:
            self._reloads[result] += 1

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP secrets_init_webhook_reviews_total AdmissionReviews answered, by outcome.",
                "# TYPE secrets_init_webhook_reviews_total counter",
                *_labelled("secrets_init_webhook_reviews_total", "outcome", self._reviews),
                "# HELP secrets_init_webhook_review_duration_seconds Time to answer a review.",
                "# TYPE secrets_init_webhook_review_duration_seconds histogram",
            ]
            for bound, count in zip(BUCKETS, self._buckets, strict=True):
                lines.append(
                    f'secrets_init_webhook_review_duration_seconds_bucket{{le="{bound}"}} {count}'
                )
            lines += [
                f'secrets_init_webhook_review_duration_seconds_bucket{{le="+Inf"}} {self._count}',
                f"secrets_init_webhook_review_duration_seconds_sum {self._sum:.6f}",
                f"secrets_init_webhook_review_duration_seconds_count {self._count}",
                "# HELP secrets_init_webhook_registry_lookups_total Image config lookups "
                "that went to a registry, by result.",
                "# TYPE secrets_init_webhook_registry_lookups_total counter",
                *_labelled("secrets_init_webhook_registry_lookups_total", "result", self._lookups),
                "# HELP secrets_init_webhook_registry_cache_hits_total Image config lookups "
                "answered from the cache.",
                "# TYPE secrets_init_webhook_registry_cache_hits_total counter",
                f"secrets_init_webhook_registry_cache_hits_total {self._cache_hits}",
                "# HELP secrets_init_webhook_certificate_reloads_total Certificate files "
                "loaded after a change, by result.",
                "# TYPE secrets_init_webhook_certificate_reloads_total counter",
                *_labelled(
                    "secrets_init_webhook_certificate_reloads_total", "result", self._reloads
                ),
            ]
        return "\n".join(lines) + "\n"


def _labelled(name: str, label: str, counts: Counter[str]) -> list[str]:
    return [f'{name}{{{label}="{key}"}} {counts[key]}' for key in sorted(counts)]
