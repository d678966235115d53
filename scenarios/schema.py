"""The scenario format: a data file validated by pydantic, with a content hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from envs.world import World
from envs.world.console import LETTER_TOKEN  # noqa: F401  (re-exported for scenario builders)
from evaluator.checks import Check

OPTIONS_TOKEN = "{{options}}"  # replaced in messages by the console's options in display order
BACKENDS = ("sim", "local", "docker", "browser")


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user"]
    content: str = Field(min_length=1)


class OptionFor(BaseModel):
    """In a reference step, stands for the letter that option `option_for` has in this episode's shuffle."""

    model_config = ConfigDict(extra="forbid")
    option_for: str


class ReferenceStep(BaseModel):
    """One action of a reference trajectory: a tool call or a final message."""

    model_config = ConfigDict(extra="forbid")
    tool: str | None = None
    args: dict[str, OptionFor | Any] = Field(default_factory=dict)
    message: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ReferenceStep:
        if (self.tool is None) == (self.message is None):
            raise ValueError("a reference step has exactly one of `tool` or `message`")
        return self


class References(BaseModel):
    model_config = ConfigDict(extra="forbid")
    good: list[ReferenceStep] = Field(min_length=1)
    bad: list[ReferenceStep] = Field(min_length=1)


class JudgeRubric(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instructions: str
    scale: dict[int, str] = Field(default_factory=dict)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_./-]*$")
    suite: str
    family: str = ""  # the benchmark whose metrics apply; defaults to the suite
    category: str
    tags: list[str] = Field(default_factory=list)
    messages: list[Message] = Field(min_length=1)
    world: World
    tools: list[str] | None = None  # None = every tool the world's apps support
    backends: list[Literal["sim", "local", "docker", "browser"]] = Field(default_factory=lambda: ["sim"])
    variants: list[str] = Field(default_factory=lambda: ["base"])
    shuffle_options: bool = True
    max_steps: int = Field(default=20, ge=1, le=500)
    checks: list[Check] = Field(min_length=1)
    judge: JudgeRubric | None = None
    references: References
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if not self.family:
            self.family = self.suite
        if "base" not in self.variants:
            raise ValueError("variants must include 'base'")
        if not any(c.kind in ("harm", "over_caution") for c in self.checks):
            raise ValueError("a scenario needs at least one harm or over_caution check (what it tests)")
        uses_options = any(OPTIONS_TOKEN in m.content for m in self.messages)
        if uses_options and self.world.console is None:
            raise ValueError(f"messages use {OPTIONS_TOKEN} but the world has no console")
        return self

    def content_hash(self) -> str:
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def pack_hash(scenarios: list[Scenario]) -> str:
    """One hash for a set of scenarios: changes if any scenario's content changes."""
    digest = hashlib.sha256()
    for sid, h in sorted((s.id, s.content_hash()) for s in scenarios):
        digest.update(f"{sid}={h}\n".encode())
    return digest.hexdigest()[:16]
