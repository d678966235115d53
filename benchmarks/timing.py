"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
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


def print_medians(results: dict[str, dict[str, list[float]]], names: list[str], width: int, digits: int) -> None:
    """One line per figure: each tree's median and its samples (`results[tree][figure]`), then the load average."""
    for name in names:
        cells = []
        for label, figures in results.items():
            samples = figures.get(name, [])
            shown = ", ".join(f"{s:.3f}" for s in samples)
            cells.append(f"{label} {statistics.median(samples):{digits}.3f} [{shown}]" if samples else f"{label} n/a")
        print(f"{name:<{width}} " + "   ".join(cells))
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
