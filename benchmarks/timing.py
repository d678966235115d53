"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def describe(name: str, samples: list[float], width: int = 52) -> None:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    print(f"{name:<{width}} mean {statistics.mean(ms):8.2f} ms   p50 {statistics.median(ms):8.2f} ms   "
          f"p95 {p95:8.2f} ms   (n={len(ms)})")
