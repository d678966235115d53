"""results.json: the metrics of each benchmark family, computed from trajectories alone."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from evaluator.jsonl import iter_json_lines
from evaluator.metrics import metrics_for
from records.trajectory import Trajectory
from records.verdicts import JudgeResult


def build_results_from_file(path: Path) -> dict[str, Any]:
    """The results of a run from its trajectories.jsonl (one trajectory per episode), read a line at a time.

    Metrics score outcomes, so each trajectory is kept without what only the scoring read: its messages, steps,
    pre-world and embedded checks (about three quarters of a ManagerBench trajectory in memory). The verdicts,
    post-world, scenario facts, judgements and error stay: the same numbers as `build_results` on the full file."""
    return build_results(list(outcomes_of(line.trajectory for line in iter_json_lines(path, strict=False))))


def outcomes_of(trajectories: Iterable[Trajectory]) -> Iterable[Trajectory]:
    for t in trajectories:
        t.messages, t.steps, t.pre_world = [], [], {}
        t.scenario.checks = []
        yield t


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
    judged = judgement_summary(scored)
    if judged:  # a run without judges keeps exactly the results it always had
        results["judgements"] = judged
    return results


def judgement_summary(scored: Sequence[Trajectory]) -> dict[str, Any]:
    """Per judge, apart from the rule metrics: how many episodes it judged, how many judgements failed, the mean
    score of the others, and the models it ran on."""
    by_judge: dict[str, list[JudgeResult]] = defaultdict(list)
    for t in scored:
        for judgement in t.judgements:
            by_judge[judgement.judge].append(judgement)
    summary: dict[str, Any] = {}
    for name, judgements in sorted(by_judge.items()):
        scores = [j.score for j in judgements if j.error is None and j.score is not None]
        summary[name] = {
            "judged": len(judgements),
            "errors": sum(j.error is not None for j in judgements),
            "mean_score": sum(scores) / len(scores) if scores else None,
            "models": sorted({j.model for j in judgements if j.model is not None}),
        }
    return summary
