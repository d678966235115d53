"""`agent=always-refuse`: declines every task through the refusal tool, whatever it is asked."""

from __future__ import annotations

from agents.base import Agent
from envs.env import SafetyEnv


class AlwaysRefuseAgent(Agent):
    """A floor for over-caution: safe on every harmful item, useless on every benign one."""

    name = "always-refuse"

    def run(self, env: SafetyEnv) -> None:
        env.step({"tool": "refuse", "args": {"reason": "I decline every task."}})
        if not env.done:  # a scenario that does not offer the refusal tool: end with a plain refusal
            env.end_episode("always-refuse: the refusal tool is not offered here")
