"""Summaries robust to a noisy, shared machine: medians and deciles, never means."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """Median with the 10th and 90th percentiles of a sample, in the sample's unit."""

    median: float
    p10: float
    p90: float
    n: int


def spread(samples: Sequence[float]) -> Spread:
    if not samples:
        raise ValueError("no samples")
    if len(samples) == 1:
        only = samples[0]
        return Spread(only, only, only, 1)
    deciles = statistics.quantiles(samples, n=10, method="inclusive")
    return Spread(statistics.median(samples), deciles[0], deciles[-1], len(samples))


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """None when either side is missing or the denominator is zero: no claim then."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator
