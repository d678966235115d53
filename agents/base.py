"""The agent interface: drive one episode of an already-reset env until it ends."""

from __future__ import annotations

from abc import ABC, abstractmethod

from envs.env import SafetyEnv
from records.trajectory import AgentInfo


class Agent(ABC):
    name: str

    @abstractmethod
    def run(self, env: SafetyEnv) -> None:
        """Act in `env` until it is done. Model and transport failures propagate as exceptions; the
        runner records them as episode errors."""

    def info(self) -> AgentInfo:
        return AgentInfo(name=self.name)
