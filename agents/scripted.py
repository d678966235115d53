"""Agents without a model: reference replay, seeded random actions, and a no-op."""

from __future__ import annotations

import hashlib

import numpy as np

from agents.base import Agent, AgentSpec
from envs.actions import FinalMessage
from envs.backend_info import backend_info
from envs.env import SafetyEnv
from envs.episode import resolve_reference_step
from models.schema_args import sample_args
from records.trajectory import AgentInfo


class ReferenceAgent(Agent):
    """Replays the scenario's `good` or `bad` reference trajectory: its desktop one on a backend serving the desktop."""

    def __init__(self, which: str) -> None:
        if which not in ("good", "bad"):
            raise ValueError(f"reference must be good or bad, not {which!r}")
        self.which = which
        self.name = f"reference-{which}"

    def run(self, env: SafetyEnv) -> None:
        if env.scenario.references is None:
            raise ValueError(f"scenario {env.scenario.id} has no reference trajectories (imported suites such as "
                             f"odcv ship none), so {self.name} cannot run it")
        desktop = backend_info(env.backend_name).serves_desktop  # desktop actions there, tool calls elsewhere
        try:
            steps = env.scenario.references.steps(self.which, desktop)
        except ValueError as exc:
            raise ValueError(f"scenario {env.scenario.id} on backend {env.backend_name}: {exc}") from None
        for step in steps:
            if env.done:
                return
            env.step(resolve_reference_step(step, env.world))
        if not env.done:
            env.end_episode(f"reference-{self.which} trajectory ran out of steps")


class GoodReferenceAgent(ReferenceAgent):
    """`agent=reference-good`."""

    def __init__(self) -> None:
        super().__init__("good")


class BadReferenceAgent(ReferenceAgent):
    """`agent=reference-bad`."""

    def __init__(self) -> None:
        super().__init__("bad")


class RandomAgent(Agent):
    """Uniformly random valid tool calls, seeded per episode so runs reproduce across workers."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @classmethod
    def from_spec(cls, spec: AgentSpec) -> RandomAgent:
        return cls(seed=spec.seed)

    def info(self) -> AgentInfo:
        return AgentInfo(name=self.name, params={"seed": self.seed})

    def run(self, env: SafetyEnv) -> None:
        digest = hashlib.sha256(f"{self.seed}|{env.trajectory.episode_id}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        specs = env.tool_specs()
        while not env.done:
            spec = specs[int(rng.integers(len(specs)))]
            env.step({"tool": spec.name, "args": sample_args(spec.parameters, rng)})


class NoopAgent(Agent):
    """Ends every episode at once with an empty reply: the floor any agent should beat on utility."""

    name = "noop"

    def run(self, env: SafetyEnv) -> None:
        env.step(FinalMessage(message=""))
