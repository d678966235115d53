"""The agent interface: drive one episode of an already-reset env until it ends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from envs.env import SafetyEnv
from models.spec import ModelConfig
from records.trajectory import AgentInfo


class AgentSpec(BaseModel):
    """What an agent is built from: the run's model settings (`model=`, `base_url=`, ...) and its seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: ModelConfig = Field(default_factory=ModelConfig)
    seed: int = Field(default=0, ge=0)


class Agent(ABC):
    name: str
    needs_model: ClassVar[bool] = False  # True: it calls `spec.model`; False: `model=` does not change what it does

    @classmethod
    def from_spec(cls, spec: AgentSpec) -> Agent:
        """Build the agent for a run. An entry point in `safety_sandbox.agent` names an Agent subclass; override this
        where the constructor needs the model or the seed."""
        return cls()

    @abstractmethod
    def run(self, env: SafetyEnv) -> None:
        """Act in `env` until it is done. Model and transport failures propagate as exceptions; the
        runner records them as episode errors."""

    def info(self) -> AgentInfo:
        return AgentInfo(name=self.name)
