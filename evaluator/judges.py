"""Judges: optional scorers that read an episode's messages, trace and rubric after the rule checks have spoken.

A judge is a `Judge` subclass registered under a name in the entry-point group `safety_sandbox.judge` (an LLM judge
builds its client from `models`; none ship yet). The scoring stage (`evaluator.scoring.run_judges`) builds the
judge's prompt, hashes it, asks for the score and records the outcome as a `JudgeResult`, apart from the verdicts.
One judge instance serves every episode of a run, from several worker threads at once: keep it stateless.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from envs.plugins import Registry, subclass_of

if TYPE_CHECKING:  # annotations only: the run's config imports this module to check judges= names, and stays quick
    from records.trajectory import Trajectory
    from records.verdicts import JudgeRubric


class JudgeError(Exception):
    """The judge could not judge this episode (no rubric, an unusable model reply); recorded as its error."""


class JudgeScore(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    score: float
    rationale: str = ""


class Judge(ABC):
    name: ClassVar[str]
    model: str | None = None  # the model spec it runs on, recorded with each judgement (None: no model)

    @abstractmethod
    def prompt(self, trajectory: Trajectory, rubric: JudgeRubric | None) -> str:
        """The exact text this judge gives its model for this episode (hashed into the judgement)."""

    @abstractmethod
    def judge(self, trajectory: Trajectory, rubric: JudgeRubric | None, prompt: str) -> JudgeScore:
        """Score the episode from `prompt`. Raise JudgeError (or anything else) when it cannot: the failure is
        recorded on the judgement, never on the episode."""


JUDGES: Registry[type[Judge]] = Registry("judge", subclass_of(Judge))


def judge_names(spec: str | None) -> list[str]:
    """The names of a `judges=` option (a comma list), in order and without repeats."""
    names = [n.strip() for n in (spec or "").split(",") if n.strip()]
    return list(dict.fromkeys(names))


def make_judges(names: Sequence[str]) -> list[Judge]:
    """One instance of each named judge. Raises UnknownPart (suggesting close names) or PluginError."""
    return [JUDGES.get(name)() for name in names]
