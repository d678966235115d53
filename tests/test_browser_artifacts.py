"""What backend=browser gives an agent before its first action (the desktop's launcher page, whose refs it can act on),
and where a run keeps its screenshots: <out>/artifacts/<episode>/screenshot-NNN.png, named in the step's observation
relative to the run folder, from the runner's own process and from worker processes; a folder that cannot be written
is a recorded episode error. On sim nothing changes: reset's observation is what it was."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import envs.runner
from agents.base import Agent
from agents.react import initial_messages
from agents.registry import AGENTS
from envs.actions import FinalMessage
from envs.backends.base import artifact_folder
from envs.config import RunConfig
from envs.env import SafetyEnv
from envs.runner import execute
from envs.spaces import clip_text
from records.trajectory import Trajectory
from scenarios.registry import select
from scenarios.schema import ReferenceStep, Scenario

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SAVED_AS = re.compile(r"saved as (\S+\.png)\.")


def osblind(count: int = 1) -> list[Scenario]:
    return sorted(select("osblind"), key=lambda s: s.id)[:count]


def ref_of(observation: str, line_pattern: str) -> str:
    for line in observation.splitlines():
        if re.search(line_pattern, line) and (found := re.search(r"\[ref=((?:f\d+)?e\d+)\]", line)):
            return found.group(1)
    raise AssertionError(f"no line matching {line_pattern!r} with a ref in:\n{observation}")


def trajectories(out: Path) -> list[Trajectory]:
    lines = (out / "trajectories.jsonl").read_text().splitlines()
    return [Trajectory.model_validate(json.loads(line)) for line in lines]


def saved_screenshots(traj: Trajectory) -> list[str]:
    """The files the trajectory's steps say they saved, as named there (relative to the run folder)."""
    return [m.group(1) for s in traj.steps if (m := SAVED_AS.search(s.observation))]


# ---- the first observation -----------------------------------------------------------------------------------

def test_sim_reset_observation_is_what_it_was():
    """The observation a sim reset returns, rebuilt as the env built it before first_observation existed."""
    for scenario in osblind(3) + select("managerbench")[:3]:
        env = SafetyEnv(scenario, backend="sim")
        try:
            obs, _ = env.reset(seed=7)
            tools = json.dumps([s.as_openai() for s in env.tool_specs()], ensure_ascii=False)
            text = {role: "\n\n".join(m["content"] for m in env.messages if m["role"] == role)
                    for role in ("system", "user")}
            assert obs == {"system": clip_text(text["system"]), "goal": clip_text(text["user"]),
                           "tools": clip_text(tools), "observation": "", "last_action_error": ""}, scenario.id
            assert env.observation == obs
            # The ReAct agent starts from the scenario's messages alone, as before.
            assert [m.content for m in initial_messages(env)] == [m["content"] for m in env.messages]
        finally:
            env.close()


@pytest.mark.slow
def test_browser_reset_shows_the_desktop_launcher_and_the_first_turn_can_act_on_its_refs():
    env = SafetyEnv(osblind()[0], backend="browser")
    try:
        obs, _ = env.reset(seed=0)
        first = obs["observation"]
        assert first.startswith("URL: http://desktop.test/\n"), first[:300]
        # Refs are `e12`, or `f3e12` in a page the warm browser reached by navigating (after earlier episodes).
        assert "Tabs:\n  [0] (active) " in first and re.search(r"\[ref=(f\d+)?e\d+\]", first)
        assert obs["last_action_error"] == "" and env.observation == obs
        # The ReAct agent is shown the page after the scenario's messages.
        messages = initial_messages(env)
        assert len(messages) == len(env.messages) + 1 and first in messages[-1].content
        # A ref from the reset's observation is one the desktop accepts, with no observation in between.
        files = ref_of(first, r'link "Files"')
        obs, *_ = env.step({"tool": "click", "args": {"bid": files}})
        assert obs["last_action_error"] == "", obs["last_action_error"]
        assert obs["observation"].startswith("URL: http://desktop.test/files/")
    finally:
        env.close()


# ---- screenshots in a run ------------------------------------------------------------------------------------

class Photographer(Agent):
    """Screenshots the launcher, opens the first app, screenshots again, finishes."""

    name = "photographer"

    def run(self, env: SafetyEnv) -> None:
        first_app = ref_of(env.observation["observation"], r'^\s*- link "(?!Desktop)')  # reset's page
        shoot = {"tool": "screenshot", "args": {}}
        for action in (shoot, {"tool": "click", "args": {"bid": first_app}}, shoot, FinalMessage(message="Seen.")):
            if env.done:  # e.g. the backend failed
                return
            env.step(action)


@pytest.fixture
def photographer(monkeypatch):
    monkeypatch.setattr(AGENTS, "local", {})
    AGENTS.add("photographer", lambda spec: Photographer())
    return "photographer"


def run_config(scenario: str, agent: str, out: Path, **extra) -> RunConfig:
    return RunConfig(scenario=scenario, agent=agent, backend="browser", out=str(out), progress=False, **extra)


@pytest.mark.slow
def test_a_run_saves_screenshots_beside_the_trajectory_and_the_steps_name_them(photographer, tmp_path: Path):
    scenario = osblind()[0]
    out = tmp_path / "run"
    folder = out / "artifacts" / artifact_folder(f"{scenario.id}::{scenario.default_variants[0]}::0")
    folder.mkdir(parents=True)
    (folder / "screenshot-007.png").write_bytes(b"left by an earlier try of this episode")
    outcome = execute(run_config(scenario.id, photographer, out))
    [traj] = trajectories(out)
    assert outcome.errors == [] and traj.error is None and traj.verdicts is not None
    named = saved_screenshots(traj)
    assert named == [f"artifacts/{artifact_folder(traj.episode_id)}/screenshot-{n:03d}.png" for n in (1, 2)]
    shots = [(out / name).read_bytes() for name in named]
    assert all(png.startswith(PNG_SIGNATURE) and len(png) > 1000 for png in shots)
    assert shots[0] != shots[1]  # the launcher, then an app
    assert [s.action["tool"] for s in traj.steps[:3]] == ["screenshot", "click", "screenshot"]
    assert sorted(p.name for p in folder.iterdir()) == ["screenshot-001.png", "screenshot-002.png"]


@pytest.mark.slow
def test_an_artifacts_folder_that_cannot_be_written_is_a_recorded_episode_error(photographer, tmp_path: Path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "artifacts").write_text("a file where the folder should be")
    outcome = execute(run_config(osblind()[0].id, photographer, out))
    [traj] = trajectories(out)
    assert traj.error is not None and traj.error.kind == "backend" and traj.verdicts is None
    assert "the screenshot could not be saved as" in traj.error.message and "artifacts" in traj.error.message
    assert [t.episode_id for t in outcome.errors] == [traj.episode_id]
    assert (out / "results.json").exists()  # the run itself went on to its end


@pytest.mark.slow
def test_worker_processes_save_screenshots_too(monkeypatch, tmp_path: Path):
    """reference-good from two worker processes, on scenarios whose desktop references start with a screenshot."""
    shoot_first = []
    for scenario in osblind(2):
        desktop = scenario.references.desktop
        good = [ReferenceStep(tool="screenshot"), *desktop.good]
        references = scenario.references.model_copy(update={"desktop": desktop.model_copy(update={"good": good})})
        shoot_first.append(scenario.model_copy(update={"references": references}))
    monkeypatch.setattr(envs.runner, "select", lambda *args, **kwargs: shoot_first)
    out = tmp_path / "run"
    outcome = execute(run_config("osblind", "reference-good", out, workers=2, executor="processes"))
    assert outcome.executor == "processes" and outcome.errors == []
    runs = trajectories(out)
    assert sorted(t.scenario.id for t in runs) == sorted(s.id for s in shoot_first)
    for traj in runs:
        [name] = saved_screenshots(traj)
        assert name == f"artifacts/{artifact_folder(traj.episode_id)}/screenshot-001.png"
        assert (out / name).read_bytes().startswith(PNG_SIGNATURE)


# ---- the episode's folder --------------------------------------------------------------------------------------

def test_an_episode_folder_is_its_id_and_never_reaches_outside_the_artifacts_folder(tmp_path: Path):
    assert str(artifact_folder("osblind/phish/acme::base::0")) == "osblind/phish/acme::base::0"
    odd = ["a/../../x::v::0", "..", "../x", "a//b::v::0", "/abs::v::0", ".hidden/x::v::0", "x::v w::0",
           "x::a\nb::0", "a/" * 20 + "b", "é/x::v::0", "x" * 500]
    folders = [artifact_folder(e) for e in [*odd, "a/../x::v::0", "a_.._x::v::0"]]
    assert len(set(folders)) == len(folders)  # no two ids share a folder
    root = (tmp_path / "artifacts").resolve()
    for episode, folder in zip(odd, folders, strict=False):
        assert len(folder.parts) == 1 and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.:=+-]*-[0-9a-f]{12}", folder.name), (
            episode, folder)
        assert (root / folder).resolve().parent == root and len(folder.name) < 100
