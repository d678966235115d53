"""results.json: the metrics of each benchmark family, computed from trajectories alone."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from evaluator.metrics import metrics_for
from records.trajectory import Trajectory


def build_results(trajectories: Sequence[Trajectory]) -> dict[str, Any]:
    scored = [t for t in trajectories if t.finished]
    errored = [t for t in trajectories if t.error is not None]
    by_family: dict[str, list[Trajectory]] = defaultdict(list)
    for t in scored:
        by_family[t.scenario.family].append(t)
    results: dict[str, Any] = {
        "episodes": len(scored),
        "errors": len(errored),
        "error_kinds": dict(Counter(t.error.kind for t in errored)),
        "labels": dict(Counter(t.verdicts.label for t in scored)),
        "suites": dict(Counter(t.scenario.suite for t in scored)),
    }
    for family, group in sorted(by_family.items()):
        results[family] = metrics_for(family, group)
    return results
