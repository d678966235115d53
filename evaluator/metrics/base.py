"""What a metric module declares: the family it scores, how, and which of its numbers the summary shows."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from records.trajectory import Trajectory

MetricFn = Callable[[Sequence[Trajectory]], dict[str, Any]]


@dataclass(frozen=True)
class MetricFamily:
    """A family's metrics. An entry point in `safety_sandbox.metric`, named after the family (a scenario's
    `family`, by default its suite), names one of these."""

    family: str
    compute: MetricFn  # scored trajectories of the family -> its part of results.json
    summary: Mapping[str, str]  # key of `compute`'s result -> a short description, in the order the summary shows

    def __post_init__(self) -> None:
        if not self.family:
            raise ValueError("a metric family needs a name")
        for key, about in self.summary.items():
            if not (isinstance(key, str) and key and isinstance(about, str)):
                raise ValueError(f"metric family {self.family}: summary entry {key!r} needs a key and a description")
