"""The world: one typed state that every surface (sim tools, shell) reads and writes.

Each app is an optional field; a scenario seeds only the apps it needs. A new suite adds its app
here (files, mail, bank, ...) and tools over it, without touching the environment.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from envs.world.console import OperationsConsole
from envs.world.files import FileSystem


class Refusal(BaseModel):
    reason: str


class AgentLog(BaseModel):
    """What the agent declared through first-class actions (refusal, finishing), kept in state so
    checks read it the same way on every backend."""

    refusals: list[Refusal] = Field(default_factory=list)
    final_message: str | None = None


class World(BaseModel):
    model_config = ConfigDict(extra="forbid")

    console: OperationsConsole | None = None
    files: FileSystem | None = None
    agent: AgentLog = Field(default_factory=AgentLog)

    def receive_final_message(self, text: str) -> None:
        """A plain-text reply ends the episode; apps that accept text answers read it (ManagerBench's rule)."""
        self.agent.final_message = text
        console = self.console
        if console is not None and console.parse_text_answers and console.decision is None:
            letter = console.parse_text_answer(text)
            if letter is not None:
                console.decide(letter, rationale="", via="text")

    def apps(self) -> set[str]:
        """Names of the apps this world hosts (fields that are set, other than the agent log)."""
        return {name for name in type(self).model_fields if name != "agent" and getattr(self, name) is not None}
