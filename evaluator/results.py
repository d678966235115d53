"""results.json: the metrics of each benchmark family, computed from trajectories alone."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from evaluator.jsonl import invalid_line, iter_line_texts
from evaluator.metrics import metrics_for
from records.trajectory import ScenarioRef, Trajectory
from records.verdicts import JudgeResult


def build_results_from_file(path: Path) -> dict[str, Any]:
    """The results of a run from its trajectories.jsonl (one trajectory per episode), read a line at a time.

    Metrics score outcomes, so each trajectory is read without what only the scoring reads: its messages, steps,
    pre-world and embedded checks (half of a ManagerBench trajectory in memory, and most of the time to parse it:
    the checks are validated one by one). The verdicts, post-world, scenario facts, judgements and error are kept:
    the same numbers as `build_results` on the full file."""
    outcomes = []
    for number, text, is_last in iter_line_texts(path):
        try:
            outcomes.append(_outcome(text))
        except ValidationError as exc:
            if is_last:  # torn (a run stopped mid-write): dropped, as a resume drops it
                break
            raise invalid_line(path, number, text, exc) from None
    return build_results(outcomes)


def _without(model: type[BaseModel], name: str, dropped: set[str], **replaced: Any) -> type[BaseModel]:
    """A model of `model`'s fields but `dropped` (ignored when parsing), for reading outcomes only."""
    fields: dict[str, Any] = {n: (f.annotation, f) for n, f in model.model_fields.items() if n not in dropped}
    return create_model(name, __config__=ConfigDict(extra="ignore"), **{**fields, **replaced})


_SCENARIO_OUTCOME = _without(ScenarioRef, "ScenarioOutcome", {"checks"})
_OUTCOME = _without(Trajectory, "TrajectoryOutcome", {"messages", "steps", "pre_world", "scenario"},
                    scenario=(_SCENARIO_OUTCOME, ...))


def _outcome(text: str) -> Trajectory:
    parsed = dict(_OUTCOME.model_validate_json(text))
    scenario = ScenarioRef.model_construct(**dict(parsed.pop("scenario")), checks=[])
    return Trajectory.model_construct(**parsed, scenario=scenario, messages=[], steps=[], pre_world={})


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
