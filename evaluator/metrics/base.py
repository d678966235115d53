"""What a metric module declares: the family it scores, how, and which of its numbers the summary shows.

A family's metrics are worked out either by a tally, which is handed the family's trajectories one at a time and
keeps counts (results then take memory flat in the number of episodes), or by a function over all of them at once
(the family's trajectories are then kept until the end of the run). The families shipped here tally.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from records.trajectory import Trajectory

MetricFn = Callable[[Sequence[Trajectory]], dict[str, Any]]


class Tally(Protocol):
    """A family's metrics kept one trajectory at a time."""

    def add(self, trajectory: Trajectory) -> None:
        """Count one scored trajectory of the family."""

    def result(self) -> dict[str, Any]:
        """The family's part of results.json for what was added so far."""


@dataclass(frozen=True, kw_only=True)
class MetricFamily:
    """A family's metrics. An entry point in `safety_sandbox.metric`, named after the family (a scenario's
    `family`, by default its suite), names one of these. Give `tally` (a function making a fresh Tally) or `compute`
    (scored trajectories of the family -> its part of results.json). In a run, both see each trajectory as written,
    without its messages, pre-world and embedded checks, which metrics do not read."""

    family: str
    summary: Mapping[str, str]  # key of the result -> a short description, in the order the summary shows
    compute: MetricFn | None = None
    tally: Callable[[], Tally] | None = None

    def __post_init__(self) -> None:
        if not self.family:
            raise ValueError("a metric family needs a name")
        if (self.compute is None) == (self.tally is None):
            raise ValueError(f"metric family {self.family}: give exactly one of compute= and tally=")
        for key, about in self.summary.items():
            if not (isinstance(key, str) and key and isinstance(about, str)):
                raise ValueError(f"metric family {self.family}: summary entry {key!r} needs a key and a description")

    def start(self) -> Tally:
        """A fresh tally of this family's metrics (over `compute`, one that keeps the trajectories)."""
        return self.tally() if self.tally is not None else _Kept(self.compute)

    def measure(self, trajectories: Iterable[Trajectory]) -> dict[str, Any]:
        """The metrics of `trajectories`, all at once."""
        tally = self.start()
        for trajectory in trajectories:
            tally.add(trajectory)
        return tally.result()


class _Kept:
    """A family declared by `compute`: its trajectories are kept, and computed over at the end."""

    def __init__(self, compute: MetricFn) -> None:
        self._compute = compute
        self._trajectories: list[Trajectory] = []

    def add(self, trajectory: Trajectory) -> None:
        self._trajectories.append(trajectory)

    def result(self) -> dict[str, Any]:
        return self._compute(self._trajectories)


def pct(hits: int, total: int) -> float | None:
    """`hits` of `total` as a percentage rounded to 4 places; None when there is nothing to count."""
    return round(100.0 * hits / total, 4) if total else None


class Distribution:
    """Counts of small whole numbers (steps, severities): their mean and median as the statistics module gives them
    over the list of values, in memory bounded by the number of distinct values."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.total = 0
        self.n = 0

    def add(self, value: int) -> None:
        self.counts[value] += 1
        self.total += value
        self.n += 1

    def mean(self) -> int | float | None:
        """statistics.mean of the values: an int when it is whole, else the float of the exact quotient."""
        if not self.n:
            return None
        return self.total // self.n if self.total % self.n == 0 else self.total / self.n

    def fmean(self) -> float | None:
        """statistics.fmean of the values."""
        return self.total / self.n if self.n else None

    def median(self) -> int | float | None:
        """statistics.median of the values: the middle one, or the mean of the middle two."""
        if not self.n:
            return None
        middle = self._nth(self.n // 2)
        return middle if self.n % 2 else (self._nth(self.n // 2 - 1) + middle) / 2

    def _nth(self, index: int) -> int:
        seen = 0
        for value in sorted(self.counts):
            seen += self.counts[value]
            if index < seen:
                return value
        raise IndexError(index)
