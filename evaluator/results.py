"""results.json: the metrics of each benchmark family, computed from trajectories alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from evaluator.jsonl import invalid_line, iter_line_texts
from evaluator.metrics import FamilyTally
from records.trajectory import ScenarioRef, Trajectory
from records.verdicts import JudgeResult


def build_results_from_file(path: Path) -> dict[str, Any]:
    """The results of a run from its trajectories.jsonl (one trajectory per episode), read and counted a line at a
    time: memory flat in the number of episodes (but for families whose metrics are a `compute` over them all).

    Metrics score outcomes, so each trajectory is read without what only the scoring reads: its messages, pre-world
    and embedded checks (most of the time to parse a ManagerBench trajectory: the checks are validated one by one).
    Its steps, verdicts, post-world, scenario facts, judgements and error are kept: the same numbers as
    `build_results` on the full file."""
    tally = ResultsTally()
    for number, text, is_last in iter_line_texts(path):
        try:
            outcome = _outcome(text)
        except ValidationError as exc:
            if is_last:  # torn (a run stopped mid-write): dropped, as a resume drops it
                break
            raise invalid_line(path, number, text, exc) from None
        tally.add(outcome)
    return tally.result()


def _without(model: type[BaseModel], name: str, dropped: set[str], **replaced: Any) -> type[BaseModel]:
    """A model of `model`'s fields but `dropped` (ignored when parsing), for reading outcomes only."""
    fields: dict[str, Any] = {n: (f.annotation, f) for n, f in model.model_fields.items() if n not in dropped}
    return create_model(name, __config__=ConfigDict(extra="ignore"), **{**fields, **replaced})


_SCENARIO_OUTCOME = _without(ScenarioRef, "ScenarioOutcome", {"checks"})
_OUTCOME = _without(Trajectory, "TrajectoryOutcome", {"messages", "pre_world", "scenario"},
                    scenario=(_SCENARIO_OUTCOME, ...))


def _outcome(text: str) -> Trajectory:
    parsed = dict(_OUTCOME.model_validate_json(text))
    scenario = ScenarioRef.model_construct(**dict(parsed.pop("scenario")), checks=[])
    return Trajectory.model_construct(**parsed, scenario=scenario, messages=[], pre_world={})


def build_results(trajectories: Iterable[Trajectory]) -> dict[str, Any]:
    tally = ResultsTally()
    for trajectory in trajectories:
        tally.add(trajectory)
    return tally.result()


class ResultsTally:
    """results.json, one trajectory at a time: the counts of the run, and each family's metrics of its scored
    episodes (FamilyTally), in memory that does not grow with the number of episodes."""

    def __init__(self) -> None:
        self.episodes = self.errors = 0
        self.error_kinds: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()
        self.suites: Counter[str] = Counter()
        self.families: dict[str, FamilyTally] = {}
        self.judges: dict[str, _JudgeTally] = {}

    def add(self, trajectory: Trajectory) -> None:
        if trajectory.error is not None:
            self.errors += 1
            self.error_kinds[trajectory.error.kind] += 1
        if not trajectory.finished:
            return
        self.episodes += 1
        self.labels[trajectory.verdicts.label] += 1
        self.suites[trajectory.scenario.suite] += 1
        family = trajectory.scenario.family
        if family not in self.families:
            self.families[family] = FamilyTally(family)
        self.families[family].add(trajectory)
        for judgement in trajectory.judgements:
            self.judges.setdefault(judgement.judge, _JudgeTally()).add(judgement)

    def result(self) -> dict[str, Any]:
        results: dict[str, Any] = {
            "episodes": self.episodes,
            "errors": self.errors,
            "error_kinds": dict(self.error_kinds),
            "labels": dict(self.labels),
            "suites": dict(self.suites),
        }
        for family, tally in sorted(self.families.items()):
            results[family] = tally.result()
        if self.judges:  # a run without judges keeps exactly the results it always had
            results["judgements"] = {name: tally.result() for name, tally in sorted(self.judges.items())}
        return results


class _JudgeTally:
    """Per judge, apart from the rule metrics: how many episodes it judged, how many judgements failed, the mean
    score of the others, and the models it ran on."""

    def __init__(self) -> None:
        self.judged = self.errors = self.scored = 0
        self.total = 0.0
        self.models: set[str] = set()

    def add(self, judgement: JudgeResult) -> None:
        self.judged += 1
        self.errors += judgement.error is not None
        if judgement.error is None and judgement.score is not None:
            self.scored += 1
            self.total += judgement.score
        if judgement.model is not None:
            self.models.add(judgement.model)

    def result(self) -> dict[str, Any]:
        return {"judged": self.judged, "errors": self.errors,
                "mean_score": self.total / self.scored if self.scored else None, "models": sorted(self.models)}
