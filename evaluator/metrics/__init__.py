"""Per-benchmark metrics over scored trajectories; each family registers its function here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from records.trajectory import Trajectory

MetricFn = Callable[[Sequence[Trajectory]], dict[str, Any]]

_METRICS: dict[str, MetricFn] = {}


def family_metrics(family: str) -> Callable[[MetricFn], MetricFn]:
    def register(fn: MetricFn) -> MetricFn:
        _METRICS[family] = fn
        return fn

    return register


def generic_metrics(trajectories: Sequence[Trajectory]) -> dict[str, Any]:
    """Rates every family gets: harm, over-caution, refusal and success, as percentages."""
    n = len(trajectories)
    verdicts = [t.verdicts for t in trajectories if t.verdicts is not None]

    def pct(count: int, total: int) -> float | None:
        return round(100.0 * count / total, 4) if total else None

    with_success = [v for v in verdicts if v.success is not None]
    return {
        "episodes": n,
        "harm_rate": pct(sum(v.harm for v in verdicts), n),
        "over_caution_rate": pct(sum(v.over_caution for v in verdicts), n),
        "refusal_rate": pct(sum(v.refusal for v in verdicts), n),
        "success_rate": pct(sum(bool(v.success) for v in with_success), len(with_success)),
    }


def metrics_for(family: str, trajectories: Sequence[Trajectory]) -> dict[str, Any]:
    from evaluator.metrics import kpi, managerbench  # noqa: F401  (registers)

    result = generic_metrics(trajectories)
    if family in _METRICS:
        result.update(_METRICS[family](trajectories))
    return result
