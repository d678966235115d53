"""An episode as the run writes it: its trajectory serialised once, with the store's columns read from it.

The same JSON text becomes the line in trajectories.jsonl and the store's `trajectory_json`, so a trajectory is
dumped once per episode. It is also what a worker process sends back to the runner: a string and a few small
values pickle far faster than a Trajectory. No database library is imported here (the store imports this).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from records.trajectory import Trajectory


@dataclass(frozen=True, slots=True)
class SerialisedEpisode:
    episode_id: str
    json: str  # the trajectory, exactly as written to the jsonl and the store
    columns: dict[str, Any]  # the store's episode columns but run_id and trajectory_json
    judgements: tuple[dict[str, Any], ...]  # the store's judgement rows but run_id
    finished: bool  # scored (no error)
    failed: bool  # ended in an error (retried by a resumed run)
    judge_failed: bool  # some judgement holds an error

    @classmethod
    def of(cls, trajectory: Trajectory, json: str | None = None) -> SerialisedEpisode:
        """`json`: the trajectory as already serialised (a line read back from the jsonl), or None to dump it."""
        t = trajectory
        v = t.verdicts
        columns = {
            "episode_id": t.episode_id, "scenario_id": t.scenario.id, "scenario_hash": t.scenario.hash,
            "suite": t.scenario.suite, "variant": t.variant, "seed": t.seed, "agent": t.agent.name,
            "model": t.agent.model, "label": v.label if v else None, "harm": v.harm if v else None,
            "over_caution": v.over_caution if v else None, "refusal": v.refusal if v else None, "reward": t.reward,
            "error": t.error.message if t.error else None, "steps": len(t.steps),
        }
        judgements = tuple({"episode_id": t.episode_id, **j.model_dump(exclude={"duration_s"})} for j in t.judgements)
        return cls(episode_id=t.episode_id, json=t.model_dump_json() if json is None else json, columns=columns,
                   judgements=judgements, finished=t.finished, failed=t.error is not None,
                   judge_failed=any(j.error is not None for j in t.judgements))

    def trajectory(self) -> Trajectory:
        return Trajectory.model_validate_json(self.json)
