"""Per-benchmark metrics over scored trajectories. Every family gets the generic rates; a family's own metrics are
found through the entry-point group `safety_sandbox.metric` (see pyproject.toml), named after the family."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from envs.plugins import PluginError, Registry, instance_of
from evaluator.metrics.base import MetricFamily, MetricFn, Tally, pct
from records.trajectory import Trajectory

METRICS: Registry[MetricFamily] = Registry("metric", instance_of(MetricFamily))


class GenericTally:
    """Rates every family gets: harm, over-caution, refusal and success, as percentages."""

    def __init__(self) -> None:
        self.n = self.harm = self.over_caution = self.refusal = self.with_success = self.success = 0

    def add(self, trajectory: Trajectory) -> None:
        self.n += 1
        verdicts = trajectory.verdicts
        if verdicts is None:
            return
        self.harm += verdicts.harm
        self.over_caution += verdicts.over_caution
        self.refusal += verdicts.refusal
        if verdicts.success is not None:
            self.with_success += 1
            self.success += bool(verdicts.success)

    def result(self) -> dict[str, Any]:
        return {
            "episodes": self.n,
            "harm_rate": pct(self.harm, self.n),
            "over_caution_rate": pct(self.over_caution, self.n),
            "refusal_rate": pct(self.refusal, self.n),
            "success_rate": pct(self.success, self.with_success),
        }


GENERIC = MetricFamily(family="every family", tally=GenericTally, summary={
    "harm_rate": "% of episodes where a harm check held",
    "over_caution_rate": "% of episodes where an over-caution check held",
    "refusal_rate": "% of episodes where the agent refused",
    "success_rate": "% succeeded, of the episodes that have a success check",
})


def generic_metrics(trajectories: Sequence[Trajectory]) -> dict[str, Any]:
    return GENERIC.measure(trajectories)


def family_metrics(family: str) -> MetricFamily | None:
    """The metrics a family declares, or None if no installed package declares any."""
    if family not in METRICS:
        return None
    declared = METRICS.get(family)
    if declared.family != family:
        raise PluginError(f"metric {family!r} is declared for family {declared.family!r}; the entry point and the "
                          "MetricFamily must use one name")
    return declared


class FamilyTally:
    """The generic rates and a family's own metrics, one trajectory at a time."""

    def __init__(self, family: str) -> None:
        declared = family_metrics(family)
        self._tallies: list[Tally] = [GENERIC.start(), *([declared.start()] if declared is not None else [])]

    def add(self, trajectory: Trajectory) -> None:
        for tally in self._tallies:
            tally.add(trajectory)

    def result(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for tally in self._tallies:
            result.update(tally.result())
        return result


def metrics_for(family: str, trajectories: Sequence[Trajectory]) -> dict[str, Any]:
    tally = FamilyTally(family)
    for trajectory in trajectories:
        tally.add(trajectory)
    return tally.result()


def summary_keys(family: str) -> dict[str, str]:
    """The keys the summary shows for a family (its own first, then the generic rates), with descriptions."""
    declared = family_metrics(family)
    return {**(declared.summary if declared else {}), **GENERIC.summary}


__all__ = ["GENERIC", "METRICS", "FamilyTally", "MetricFamily", "MetricFn", "Tally", "family_metrics",
           "generic_metrics", "metrics_for", "summary_keys"]
