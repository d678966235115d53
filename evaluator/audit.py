"""Audit a run's trajectories before trusting their scores: what a doctored submission would change.

From the file alone we can catch: verdicts that differ from re-scoring, embedded checks that no longer match
their recorded digest, a finished episode with no post-world (so nothing to re-score), gaps in the step
numbering. When the named scenario can be loaded here (shipped suites; imported ones with their data), the
embedded scenario facts, checks, pre-world and messages are compared with what the scenario produces now.
What no file check can catch: a post-world and trace rewritten consistently with forged verdicts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from envs.episode import prepare_episode
from envs.world.validation_messages import describe_problems
from evaluator.jsonl import TrajectoryFileError, TrajectoryLine
from evaluator.scoring import score_rules
from records.checks import Check
from records.trajectory import Trajectory, checks_digest, episode_id
from records.verdicts import rubric_digest
from scenarios.loader import ScenarioError
from scenarios.registry import SourceOptions, load_suite
from scenarios.schema import Scenario
from scenarios.transforms import apply_variant

_CHECKS = TypeAdapter(list[Check])
VERDICT_FIELDS = ("harm", "over_caution", "refusal", "success", "severity", "label", "failure")
REF_FIELDS = ("suite", "family", "category", "metadata")


@dataclass
class ScenarioLookup:
    """The scenarios a run names, loaded once per suite; a suite that cannot be loaded here is noted."""

    options: SourceOptions
    _suites: dict[str, dict[str, Scenario] | str] = field(default_factory=dict)
    _hashes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_run(cls, run_dir: Path) -> ScenarioLookup:
        """Imported suites read their data where the run did (its config.json), else from the env vars."""
        config: dict[str, Any] = {}
        try:
            loaded = json.loads((run_dir / "config.json").read_text())
            config = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            pass
        source = config.get("source")
        items = config.get("items")
        return cls(SourceOptions(source=source if isinstance(source, str) and os.path.isdir(source) else None,
                                 items=items if items in ("official", "all") else "official"))

    def get(self, suite: str, scenario_id: str) -> Scenario | str:
        """The scenario, or why it cannot be had here."""
        if suite not in self._suites:
            try:
                self._suites[suite] = {s.id: s for s in load_suite(suite, self.options)}
            except (ScenarioError, ValueError, OSError) as exc:
                self._suites[suite] = f"suite {suite!r} not loadable here ({str(exc).splitlines()[0]})"
        found = self._suites[suite]
        if isinstance(found, str):
            return found
        return found.get(scenario_id) or f"scenario {scenario_id!r} is not in suite {suite!r}"

    def content_hash(self, scenario: Scenario) -> str:
        if scenario.id not in self._hashes:
            self._hashes[scenario.id] = scenario.content_hash()
        return self._hashes[scenario.id]


@dataclass
class EpisodeAudit:
    line: int
    episode_id: str
    rescored: Trajectory
    problems: list[str]
    compared_with_scenario: bool


def rescore(trajectory: Trajectory) -> Trajectory:
    """The trajectory with its rule verdicts re-computed (judgements are left as recorded)."""
    verdicts = score_rules(trajectory)
    return trajectory if verdicts is None else trajectory.model_copy(update={"verdicts": verdicts})


def audit_line(path: Path, line: TrajectoryLine, scenarios: ScenarioLookup) -> EpisodeAudit:
    traj = line.trajectory
    try:
        rescored = rescore(traj)
    except ValidationError as exc:  # a world that does not parse: the file is broken, not just doctored
        raise TrajectoryFileError(f"{path}:{line.number}: cannot re-score (world field "
                                  f"{describe_problems(exc, first_only=True)})") from None
    except (ValueError, KeyError, TypeError) as exc:  # a check that cannot read the recorded state
        raise TrajectoryFileError(f"{path}:{line.number}: cannot re-score ({type(exc).__name__}: {exc})") from None
    problems = _file_problems(line, rescored)
    scenario = scenarios.get(traj.scenario.suite, traj.scenario.id)
    if isinstance(scenario, Scenario):
        raw_ref = line.raw.get("scenario") if isinstance(line.raw.get("scenario"), dict) else {}
        problems += _scenario_problems(traj, raw_ref, scenario, scenarios.content_hash(scenario))
    return EpisodeAudit(line.number, traj.episode_id, rescored, problems, isinstance(scenario, Scenario))


def _file_problems(line: TrajectoryLine, rescored: Trajectory) -> list[str]:
    traj, raw_ref = line.trajectory, line.raw.get("scenario", {})
    problems = []
    recorded_hash = raw_ref.get("checks_hash")
    if recorded_hash is None:
        problems.append("no checks_hash recorded: its embedded checks cannot be tied to the run")
    elif recorded_hash != checks_digest(traj.scenario.checks):
        problems.append(f"embedded checks do not match their checks_hash {recorded_hash} (edited after the run?)")
    problems += _rubric_problems(traj, raw_ref)
    if traj.error is None and traj.verdicts is not None and traj.post_world is None:
        problems.append("scored but has no post_world, so its verdicts cannot be re-scored")
    if rescored.verdicts is not None and rescored is not traj:
        problems += _verdict_differences(line.raw.get("verdicts"), rescored.verdicts.model_dump(mode="json"))
    expected_id = episode_id(traj.scenario.id, traj.variant, traj.seed)
    if traj.episode_id != expected_id:
        problems.append(f"episode_id is not {expected_id!r}, the id of its scenario, variant and seed")
    numbers = [s.index for s in traj.steps]
    if numbers != list(range(len(numbers))):
        problems.append(f"steps are numbered {_short(numbers)}, not 0..{len(numbers) - 1} (steps removed or "
                        "reordered?)")
    return problems


def _rubric_problems(traj: Trajectory, raw_ref: dict[str, Any]) -> list[str]:
    """The rubric is what a judge reads: an edited rubric would steer every judgement made from the file."""
    ref, problems = traj.scenario, []
    recorded_hash = raw_ref.get("rubric_hash")
    if ref.rubric is not None and recorded_hash is None:
        problems.append("a judge rubric but no rubric_hash recorded: the rubric cannot be tied to the run")
    elif ref.rubric is None and recorded_hash is not None:
        problems.append(f"a rubric_hash {recorded_hash} but no judge rubric recorded (removed after the run?)")
    elif ref.rubric is not None and recorded_hash != rubric_digest(ref.rubric):
        problems.append(f"embedded judge rubric does not match its rubric_hash {recorded_hash} (edited after the "
                        "run?)")
    for judgement in traj.judgements:
        if judgement.rubric_hash != recorded_hash:
            problems.append(f"judgement by {judgement.judge!r} read rubric {judgement.rubric_hash}, not the "
                            f"episode's {recorded_hash}")
    return problems


def _verdict_differences(recorded: Any, rescored: dict[str, Any]) -> list[str]:
    if not isinstance(recorded, dict):
        return ["recorded no verdicts, but the episode re-scores"]
    changed = [f"{k} {recorded.get(k)!r} -> {rescored.get(k)!r}" for k in VERDICT_FIELDS
               if recorded.get(k) != rescored.get(k)]
    old_checks = {c.get("name"): c for c in recorded.get("checks") or [] if isinstance(c, dict)}
    for check in rescored["checks"]:
        before = old_checks.get(check["name"])
        if before is None or before.get("fired") != check["fired"]:
            was = "missing" if before is None else f"fired={before.get('fired')!r}"
            changed.append(f"check {check['name']!r} {was} -> fired={check['fired']!r}")
    extra = sorted(set(old_checks) - {c["name"] for c in rescored["checks"]}, key=str)
    changed += [f"check {name!r} recorded but not among the embedded checks" for name in extra]
    if not changed and recorded.get("checks") != rescored["checks"]:
        changed.append("check details")
    return [f"recorded verdicts differ from re-scored: {'; '.join(changed)}"] if changed else []


def _scenario_problems(traj: Trajectory, raw_ref: dict[str, Any], scenario: Scenario, current_hash: str
                       ) -> list[str]:
    ref, problems = traj.scenario, []
    recorded_checks = _CHECKS.dump_python(ref.checks, mode="json")
    # An episode records the checks of its variant (a transform such as `popup` may add some).
    checks = apply_variant(scenario, traj.variant).checks if traj.variant in scenario.variants else scenario.checks
    if recorded_checks != _CHECKS.dump_python(checks, mode="json"):
        problems.append(f"embedded checks differ from scenario {scenario.id}'s checks (scenario hash "
                        f"{current_hash}, recorded {ref.hash})")
    elif ref.hash != current_hash:
        problems.append(f"scenario {scenario.id} changed since the run (hash {ref.hash} -> {current_hash}); its "
                        "checks did not")
    changed = [name for name in REF_FIELDS if getattr(ref, name) != getattr(scenario, name)]
    if "rubric" in raw_ref and ref.rubric != scenario.judge:  # runs older than carried rubrics have no key
        changed.append("judge rubric")
    if changed:
        problems.append(f"embedded scenario {', '.join(changed)} differ from scenario {scenario.id}'s")
    if traj.variant not in scenario.variants:
        return [*problems, f"scenario {scenario.id} has no variant {traj.variant!r}"]
    if ref.hash == current_hash:  # the same scenario must seed the same episode
        setup = prepare_episode(scenario, traj.variant, traj.seed)
        if setup.world.recorded() != traj.pre_world:
            problems.append("pre_world differs from the world the scenario seeds")
        if setup.messages != traj.messages:
            problems.append("messages differ from those the scenario renders")
    return problems


def _short(numbers: list[int]) -> str:
    return str(numbers) if len(numbers) <= 12 else f"{numbers[:6]}...{numbers[-3:]}"
