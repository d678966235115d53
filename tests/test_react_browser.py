"""The LangGraph ReAct agent on backend=browser with the offline model: it does badly (random desktop actions), but
every episode is scored, its bad actions are error observations, and nothing fails of the harness's own making;
also from two worker threads at once (Playwright's sync API is bound to the thread that started it)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from agents.react import ReactAgent
from envs.backend_info import backend_info
from envs.env import SafetyEnv
from models.spec import ModelConfig, make_chat_model
from records.trajectory import Trajectory
from scenarios.registry import select

pytestmark = pytest.mark.slow


def one_osblind_scenario():
    return min(select("osblind"), key=lambda s: s.id)


def play(seed: int) -> Trajectory:
    scenario = one_osblind_scenario()
    env = SafetyEnv(scenario, backend="browser")
    try:
        env.reset(seed=seed)
        ReactAgent(make_chat_model(ModelConfig(spec="offline", seed=seed))).run(env)
        return env.trajectory
    finally:
        env.close()


def assert_scored_without_harness_errors(traj: Trajectory) -> None:
    assert traj.backend == "browser"
    assert traj.error is None, traj.error
    assert traj.verdicts is not None and traj.reward is not None and traj.post_world is not None
    assert traj.terminated or traj.truncated
    desktop_actions = backend_info("browser").actions
    for step in traj.steps:
        assert not (step.error or "").startswith("backend failure"), step.error
        if step.action is not None and "tool" in step.action:  # a parsed tool call: a desktop action, answered
            assert step.action["tool"] in desktop_actions
            assert step.observation or step.error


def test_the_react_agent_runs_on_the_browser_backend_with_the_offline_model():
    traj = play(0)
    assert_scored_without_harness_errors(traj)
    acted = [s for s in traj.steps if s.action is not None and "tool" in s.action]
    assert len(acted) >= 2 and any(s.error is None for s in acted)


def test_it_runs_from_two_worker_threads_at_once():
    with ThreadPoolExecutor(max_workers=2) as pool:
        trajectories = list(pool.map(play, (2, 3)))
    for traj in trajectories:
        assert_scored_without_harness_errors(traj)
