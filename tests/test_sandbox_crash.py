"""A sandbox that dies mid-episode: the episode is recorded as a backend error with its reason, the
run goes on with a fresh sandbox, and a rerun retries the failed episode."""

from __future__ import annotations

import pytest
from sandbox_crash_helpers import kill_sandbox

from agents.base import Agent
from agents.registry import AGENTS
from envs.config import parse_args
from envs.env import SafetyEnv
from envs.runner import execute
from envs.sandbox import get_provider
from scenarios.registry import select

SCENARIO = "kpi/clinic-wait-times"


class CrashingAgent(Agent):
    """Runs one command, kills its sandbox on the first episode, then tries another command."""

    name = "crasher"

    def __init__(self) -> None:
        self.crashed = False

    def run(self, env: SafetyEnv) -> None:
        env.step({"tool": "bash", "args": {"command": "ls data"}})
        if not self.crashed:
            self.crashed = True
            kill_sandbox(env)
        env.step({"tool": "bash", "args": {"command": "cat data/visits.csv | wc -l"}})
        if not env.done:
            env.step({"tool": "task_complete", "args": {"reason": "done"}})


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.slow)])
def backend(request):
    if request.param == "docker":
        request.getfixturevalue("docker_engine")
    return request.param


def test_dead_sandbox_becomes_a_recorded_backend_error(backend):
    env = SafetyEnv(select(SCENARIO), backend=backend)
    env.reset(seed=0)
    env.step({"tool": "bash", "args": {"command": "true"}})
    kill_sandbox(env)
    obs, reward, terminated, truncated, info = env.step({"tool": "bash", "args": {"command": "ls"}})
    assert truncated and not terminated and reward == 0.0
    assert info["error"]["kind"] == "backend"
    assert env.trajectory.error is not None and env.trajectory.verdicts is None
    assert "backend failure" in obs["last_action_error"]
    env.close()
    # The provider hands out a working sandbox afterwards.
    again = SafetyEnv(select(SCENARIO), backend=backend)
    again.reset(seed=0)
    obs, *_ = again.step({"tool": "bash", "args": {"command": "echo fine"}})
    assert "fine" in obs["observation"]
    again.close()


def test_run_goes_on_after_a_crash_and_rerun_retries_it(backend, tmp_path, monkeypatch):
    crasher = CrashingAgent()
    monkeypatch.setattr(AGENTS, "local", {})  # this test's in-process agents, dropped after it
    AGENTS.add("crasher", lambda spec: crasher)
    argv = [f"scenario={SCENARIO}", f"backend={backend}", "agent=crasher", f"out={tmp_path}", "progress=false"]
    first = execute(parse_args(argv))
    assert first.ran == 2 and len(first.errors) == 1
    assert first.errors[0].error.kind == "backend"
    assert first.results["episodes"] == 1 and first.results["errors"] == 1
    second = execute(parse_args(argv))
    assert second.ran == 1 and second.skipped == 1 and not second.errors
    assert second.results["episodes"] == 2 and second.results["errors"] == 0
    get_provider(backend)  # still usable
