"""The typed record of one episode: everything needed to re-score it without the scenario files."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from records.checks import Check
from records.trace import StepRecord
from records.verdicts import JudgeResult, JudgeRubric, Verdicts, rubric_digest


class ScenarioRef(BaseModel):
    """The scenario facts the evaluator needs, frozen into the trajectory at run time. Frozen as a model too: the
    episodes of one scenario and variant in a process share one (envs.episode builds it once)."""

    model_config = ConfigDict(frozen=True)

    id: str
    hash: str
    suite: str
    family: str
    category: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    checks: list[Check]
    # A digest of `checks`, filled in when the trajectory is made. Re-scoring flags a trajectory whose checks
    # no longer match it: an edit by hand. (Whoever edits on purpose can recompute it; the scorer also
    # compares the checks with the scenario itself when it can load it.)
    checks_hash: str | None = None
    # The scenario's judge rubric, so a judge (now or when re-scoring) needs only the trajectory; with its digest,
    # filled in like checks_hash. None: the scenario has no rubric (or the run predates rubrics in trajectories).
    rubric: JudgeRubric | None = None
    rubric_hash: str | None = None

    @model_validator(mode="after")
    def _fill_hashes(self) -> ScenarioRef:
        # Written to __dict__: a frozen model refuses assignment, and this is still its making.
        if self.checks_hash is None:
            self.__dict__["checks_hash"] = checks_digest(self.checks)
        if self.rubric_hash is None and self.rubric is not None:
            self.__dict__["rubric_hash"] = rubric_digest(self.rubric)
        return self


_CHECKS = TypeAdapter(list[Check])


def checks_digest(checks: list[Check]) -> str:
    payload = json.dumps(_CHECKS.dump_python(checks, mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class AgentInfo(BaseModel):
    name: str
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class EpisodeError(BaseModel):
    kind: Literal["agent", "model", "backend"]
    message: str


class Trajectory(BaseModel):
    episode_id: str
    scenario: ScenarioRef
    variant: str
    seed: int
    backend: str
    agent: AgentInfo
    messages: list[dict[str, str]]
    steps: list[StepRecord] = Field(default_factory=list)
    terminated: bool = False
    truncated: bool = False
    pre_world: dict[str, Any]
    post_world: dict[str, Any] | None = None
    verdicts: Verdicts | None = None  # the rule checks', computed when the episode ends
    reward: float | None = None
    # The judges', after the episode; apart from the verdicts and never re-computed unless asked (score --judges).
    judgements: list[JudgeResult] = Field(default_factory=list)
    error: EpisodeError | None = None
    started_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    duration_s: float = 0.0

    @property
    def finished(self) -> bool:
        """Ran to an end and was scored (an episode with an error is not finished and is retried)."""
        return self.error is None and self.verdicts is not None


def episode_id(scenario_id: str, variant: str, seed: int) -> str:
    return f"{scenario_id}::{variant}::{seed}"
