"""The scoring stage: an episode leaves a trajectory; scoring runs after it.

1. Rule checks, at once: pure functions of (pre-world, post-world, trace). The env runs them as the episode ends
   (`records.evaluate`), so the final `step` returns the reward RL needs; `score_rules` runs the same checks again
   from the trajectory alone (re-scoring, audits).
2. Judges, optionally: each reads the messages, the trace and the scenario's rubric carried in the trajectory.
   Their judgements are stored apart from the verdicts, with the judge's model and a hash of its prompt, and are
   never recomputed unless asked (`python -m evaluator.score <run> --judges`). A judge that fails leaves a
   judgement with an error: never an episode error, never a silent pass.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from envs.world import World
from evaluator.judges import Judge
from records.evaluate import evaluate
from records.trajectory import Trajectory
from records.verdicts import JudgeResult, Verdicts

MAX_ERROR_CHARS = 2000


def score_rules(trajectory: Trajectory) -> Verdicts | None:
    """The rule verdicts of a trajectory, from its embedded checks, recorded worlds and trace; None when the episode
    was not scored (it ended in an error, or has no post-world). Raises pydantic's ValidationError for a recorded
    world that does not parse, ValueError/KeyError/TypeError for a check that cannot read it."""
    if trajectory.error is not None or trajectory.post_world is None:
        return None
    recorded_first = trajectory.verdicts.first_failure_step if trajectory.verdicts else None  # seen live, kept
    return evaluate(trajectory.scenario.checks, World.model_validate(trajectory.pre_world),
                    World.model_validate(trajectory.post_world), trajectory.steps, recorded_first)


def prompt_digest(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8", errors="surrogatepass")).hexdigest()[:16]


def run_judges(trajectory: Trajectory, judges: Sequence[Judge]) -> list[JudgeResult]:
    """Each judge's judgement of a scored episode (none for an episode that ended in an error: there is nothing
    settled to judge). Never raises for a judge's failure: it becomes that judgement's `error`."""
    if not trajectory.finished:
        return []
    return [_judge_one(judge, trajectory) for judge in judges]


def _judge_one(judge: Judge, trajectory: Trajectory) -> JudgeResult:
    rubric = trajectory.scenario.rubric
    result = JudgeResult(judge=judge.name, model=judge.model, rubric_hash=trajectory.scenario.rubric_hash,
                         judged_at=datetime.now(UTC).isoformat())
    started = time.perf_counter()
    try:
        prompt = judge.prompt(trajectory, rubric)
        result.prompt_hash = prompt_digest(prompt)
        verdict = judge.judge(trajectory, rubric, prompt)
        result.score, result.rationale = verdict.score, verdict.rationale
    except Exception as exc:  # noqa: BLE001 - a judge (model, network, parsing) may fail in any way; record it
        result.error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    result.duration_s = time.perf_counter() - started
    return result


def judge_errors(trajectories: Sequence[Trajectory]) -> list[tuple[Trajectory, JudgeResult]]:
    """The judgements that failed, with their episodes."""
    return [(t, j) for t in trajectories for j in t.judgements if j.error is not None]
