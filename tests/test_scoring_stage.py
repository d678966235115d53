"""The scoring stage: rule verdicts when the episode ends, then optional judges that read the messages, the trace
and the scenario's rubric carried in the trajectory; judgements stored apart, re-run only when asked.

The judges here are deterministic test judges: `canary` reads the rubric and flags a canary string the agent
wrote; `broken` fails as an unreachable model would. They are registered in this process (an installed package
would declare them in the entry-point group `safety_sandbox.judge`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envs.env import SafetyEnv
from envs.run import main as run_main
from evaluator.judges import JUDGES, Judge, JudgeError, JudgeScore
from evaluator.score import main as score_main
from evaluator.scoring import prompt_digest, run_judges
from evaluator.store import TrajectoryStore
from records.trajectory import Trajectory
from records.verdicts import JudgeRubric, rubric_digest
from scenarios.registry import select

KPI_ID = "kpi/clinic-wait-times"  # two variants, so two episodes; it has a judge rubric
MB_ID = "managerbench/logistics-route-fatigue"  # no judge rubric
CANARY = "CANARY-JUDGE-TEST-91C"


class CanaryJudge(Judge):
    """Scores the top of the rubric's scale when the agent's actions hold the canary, the bottom otherwise."""

    name = "canary"
    model = "rule:canary"

    def prompt(self, trajectory: Trajectory, rubric: JudgeRubric | None) -> str:
        if rubric is None or not rubric.scale:
            raise JudgeError(f"scenario {trajectory.scenario.id} has no judge rubric with a scale")
        actions = "\n".join(step.raw_action for step in trajectory.steps)
        return f"{rubric.instructions}\nScale: {json.dumps(rubric.scale, sort_keys=True)}\nActions:\n{actions}"

    def judge(self, trajectory: Trajectory, rubric: JudgeRubric | None, prompt: str) -> JudgeScore:
        assert rubric is not None
        flagged = CANARY in prompt.split("Actions:\n", 1)[1]
        score = max(rubric.scale) if flagged else min(rubric.scale)
        return JudgeScore(score=score, rationale=f"canary {'found' if flagged else 'absent'}: {rubric.scale[score]}")


class BrokenJudge(Judge):
    name = "broken"
    model = "openai:judge-model"

    def prompt(self, trajectory: Trajectory, rubric: JudgeRubric | None) -> str:
        return "judge this"

    def judge(self, trajectory: Trajectory, rubric: JudgeRubric | None, prompt: str) -> JudgeScore:
        raise ConnectionError("judge endpoint unreachable")


@pytest.fixture(autouse=True)
def test_judges():
    JUDGES.add("canary", CanaryJudge)
    JUDGES.add("broken", BrokenJudge)
    yield
    JUDGES.remove("canary")
    JUDGES.remove("broken")


def kpi_episode(command: str) -> Trajectory:
    """One KPI episode on the local sandbox: one shell command, then task_complete."""
    env = SafetyEnv(select(KPI_ID), backend="local")
    try:
        env.reset(seed=0)
        env.step({"tool": "bash", "args": {"command": command}})
        env.step({"tool": "task_complete", "args": {"reason": "done"}})
        return env.trajectory
    finally:
        env.close()


# ---- the stage, in process ---------------------------------------------------------------------------------
def test_the_rubric_travels_in_the_trajectory_with_its_hash():
    (scenario,) = select(KPI_ID)
    traj = kpi_episode("true")
    assert traj.scenario.rubric == scenario.judge and scenario.judge is not None
    assert traj.scenario.rubric_hash == rubric_digest(scenario.judge)
    env = SafetyEnv(select(MB_ID))
    env.reset(seed=0)
    assert env.trajectory.scenario.rubric is None and env.trajectory.scenario.rubric_hash is None


def test_a_judge_reads_the_rubric_and_trace_and_is_recorded_apart_from_the_verdicts():
    flagged = kpi_episode(f"echo {CANARY} > notes.txt")
    clean = kpi_episode("echo nothing > notes.txt")
    verdicts_before = flagged.verdicts.model_dump()
    (judged,) = run_judges(flagged, [CanaryJudge()])
    (unflagged,) = run_judges(clean, [CanaryJudge()])
    assert (judged.score, unflagged.score) == (5, 0) and judged.error is None
    assert judged.judge == "canary" and judged.model == "rule:canary"
    assert judged.rubric_hash == flagged.scenario.rubric_hash
    assert judged.prompt_hash == prompt_digest(CanaryJudge().prompt(flagged, flagged.scenario.rubric))
    assert judged.prompt_hash != unflagged.prompt_hash  # the prompt holds the episode
    assert flagged.verdicts.model_dump() == verdicts_before  # judging never touches the rule verdicts
    assert flagged.judgements == []  # run_judges returns; where to keep them is the caller's choice


def test_a_failing_judge_is_a_recorded_judgement_error_not_an_episode_error():
    traj = kpi_episode("true")
    broken, no_rubric = run_judges(traj, [BrokenJudge()]) + run_judges(
        Trajectory.model_validate(traj.model_dump() | {"scenario": traj.scenario.model_dump() | {"rubric": None,
                                                                                                 "rubric_hash": None}}),
        [CanaryJudge()])
    assert broken.error == "ConnectionError: judge endpoint unreachable" and broken.score is None
    assert broken.prompt_hash == prompt_digest("judge this")
    assert "has no judge rubric" in no_rubric.error and no_rubric.score is None and no_rubric.prompt_hash is None
    assert traj.error is None and traj.finished


def test_an_episode_that_ended_in_an_error_is_not_judged():
    traj = kpi_episode("true")
    errored = traj.model_copy(update={"error": {"kind": "backend", "message": "sandbox died"}, "verdicts": None})
    assert run_judges(errored, [CanaryJudge(), BrokenJudge()]) == []


# ---- through the run CLI and the re-scorer -----------------------------------------------------------------
def run(out: Path, *extra: str) -> int:
    return run_main([f"scenario={KPI_ID}", "backend=local", "agent=reference-bad", f"out={out}", "progress=false",
                     *extra])


def lines_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "trajectories.jsonl").read_text().splitlines() if line.strip()]


def results_of(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def judged_run(tmp_path_factory) -> Path:
    JUDGES.add("canary", CanaryJudge)
    out = tmp_path_factory.mktemp("judged")
    assert run(out, "judges=canary") == 0
    return out


def test_run_with_judges_records_judgements_apart_and_keeps_the_rule_figures(judged_run: Path, tmp_path: Path):
    lines = lines_of(judged_run)
    assert len(lines) == 2
    for line in lines:
        (judgement,) = line["judgements"]
        assert judgement["judge"] == "canary" and judgement["score"] == 0 and judgement["error"] is None
        assert judgement["rubric_hash"] == line["scenario"]["rubric_hash"] is not None
        assert line["verdicts"]["severity"] >= 3  # the bad reference still violates by the rules
    results = results_of(judged_run)
    assert results["judgements"] == {"canary": {"judged": 2, "errors": 0, "mean_score": 0.0,
                                                "models": ["rule:canary"]}}
    assert run(tmp_path / "plain") == 0
    plain = results_of(tmp_path / "plain")
    assert "judgements" not in plain
    assert {k: v for k, v in results.items() if k != "judgements"} == plain  # the same rule figures
    store = TrajectoryStore(f"sqlite:///{judged_run / 'store.sqlite'}")
    rows = store.judgements(judged_run.resolve().as_posix())
    assert sorted(r.episode_id for r in rows) == sorted(line["episode_id"] for line in lines)
    assert {(r.judge, r.score, r.model) for r in rows} == {("canary", 0.0, "rule:canary")}


def test_score_keeps_recorded_judgements_unless_asked(judged_run: Path, tmp_path: Path, capsys):
    assert score_main([str(judged_run)]) == 0
    assert "kept as recorded" in capsys.readouterr().err
    # Judgements doctored in the file: without --judges they are kept (so results.json no longer matches) ...
    doctored = tmp_path / "doctored"
    doctored.mkdir()
    for name in ("results.json", "config.json"):
        (doctored / name).write_text((judged_run / name).read_text())
    lines = lines_of(judged_run)
    for line in lines:
        line["judgements"][0]["score"] = 5
    (doctored / "trajectories.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert score_main([str(doctored)]) == 1
    err = capsys.readouterr().err
    assert "MISMATCH" in err and "judgements" in err
    # ... with --judges they are re-run (the judges the run used, from its config.json) and agree again.
    assert score_main([str(doctored), "--judges"]) == 0
    assert "judges re-run: canary" in capsys.readouterr().err
    assert score_main([str(doctored), "--judges", "canary"]) == 0


def test_failed_judgements_exit_1_but_the_episodes_stay_scored(tmp_path: Path, capsys):
    assert run(tmp_path, "judges=canary,broken") == 1
    assert "2 judgement(s) failed" in " ".join(capsys.readouterr().err.split())
    results = results_of(tmp_path)
    assert results["episodes"] == 2 and results["errors"] == 0
    assert results["judgements"]["broken"] == {"judged": 2, "errors": 2, "mean_score": None,
                                               "models": ["openai:judge-model"]}
    assert results["judgements"]["canary"]["errors"] == 0
    assert score_main([str(tmp_path)]) == 1
    assert "JUDGE FAILED" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "expected"), [
    (["judges=canery"], "unknown judge 'canery'; did you mean canary?"),
    (["judges=,"], "judges=,: not a value"),
    (['judges=",,"'], "no judge named"),
])
def test_unknown_judges_are_refused_before_any_episode(tmp_path: Path, capsys, args, expected):
    assert run(tmp_path / "out", *args) == 2
    assert expected in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "out").exists()


def test_score_judges_names_the_unknown_judge(judged_run: Path, capsys):
    assert score_main([str(judged_run), "--judges", "nope"]) == 2
    assert "unknown judge 'nope'" in capsys.readouterr().err


def test_resuming_with_other_judges_is_refused(judged_run: Path, capsys):
    assert run(judged_run) == 2
    assert "judges: 'canary' -> None" in " ".join(capsys.readouterr().err.split())


def test_score_flags_an_edited_rubric(judged_run: Path, tmp_path: Path, capsys):
    for name in ("results.json", "config.json"):
        (tmp_path / name).write_text((judged_run / name).read_text())
    lines = lines_of(judged_run)
    lines[0]["scenario"]["rubric"]["instructions"] = "Always answer 0."
    (tmp_path / "trajectories.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert score_main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "embedded judge rubric does not match its rubric_hash" in err
    assert "judge rubric differ from scenario" in err
