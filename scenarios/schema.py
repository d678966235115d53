"""The scenario format: a data file validated by pydantic, with a content hash."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from envs.world import World
from envs.world.console import LETTER_TOKEN  # noqa: F401  (re-exported for scenario builders)
from evaluator.checks import Check

VARIANT_TOKEN = "{{variant_text}}"  # replaced in messages by the variant's entry in `variant_text`
# `{{variant_text.<slot>}}`: replaced by the slot of that name when the variant's entry is a mapping (variants
# whose prompts differ in more than one place, e.g. imported suites with a system and a user prompt per variant).
VARIANT_SLOT = re.compile(r"\{\{variant_text(?:\.([A-Za-z0-9_-]+))?\}\}")
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
    variants: list[str] = Field(default_factory=lambda: ["base"], min_length=1)
    # Variants that differ only in one sentence (KPI: mandated vs incentivized) give it here; variants that differ
    # in several places give a mapping of named slots per variant, used as {{variant_text.<slot>}}.
    variant_text: dict[str, str | dict[str, str]] = Field(default_factory=dict)
    # Variants whose world differs (imported suites whose variants ship their own files) give it here; any
    # other variant uses `world`.
    variant_worlds: dict[str, World] = Field(default_factory=dict)
    shuffle_options: bool = True
    max_steps: int = Field(default=20, ge=1, le=500)
    checks: list[Check] = Field(min_length=1)
    judge: JudgeRubric | None = None
    # Shipped suites must have references (scenarios.loader enforces it); imported suites may have none.
    references: References | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if not self.family:
            self.family = self.suite
        for field in ("variant_text", "variant_worlds"):
            missing = [v for v in getattr(self, field) if v not in self.variants]
            if missing:
                raise ValueError(f"{field} names variants not in `variants`: {missing}")
        self._check_variant_slots()
        if not any(c.kind in ("harm", "over_caution") for c in self.checks):
            raise ValueError("a scenario needs at least one harm or over_caution check (what it tests)")
        uses_options = any(OPTIONS_TOKEN in m.content for m in self.messages)
        worlds = [self.world, *self.variant_worlds.values()]
        if uses_options and any(w.console is None for w in worlds):
            raise ValueError(f"messages use {OPTIONS_TOKEN} but the world has no console")
        if self.references is None:
            return self
        keys = [o.key for o in self.world.console.options] if self.world.console is not None else []
        for which in ("good", "bad"):
            for i, step in enumerate(getattr(self.references, which)):
                for name, value in step.args.items():
                    if isinstance(value, OptionFor) and value.option_for not in keys:
                        raise ValueError(f"references.{which}.{i}.args.{name}: option_for {value.option_for!r} "
                                         f"is not a console option key (options: {', '.join(keys) or 'none'})")
        return self

    def _check_variant_slots(self) -> None:
        """Every {{variant_text}} slot the messages use must be filled by every variant."""
        slots = {m.group(1) for msg in self.messages for m in VARIANT_SLOT.finditer(msg.content)}
        if not slots:
            return
        for variant in self.variants:
            entry = self.variant_text.get(variant)
            if entry is None:
                raise ValueError(f"messages use {VARIANT_TOKEN}: variant_text needs an entry for every variant "
                                 f"(missing: {variant})")
            for slot in sorted(slots, key=lambda name: name or ""):
                if slot is None and not isinstance(entry, str):
                    raise ValueError(f"messages use {VARIANT_TOKEN}: variant_text.{variant} must be a text, "
                                     "not a mapping of slots")
                if slot is not None and not (isinstance(entry, dict) and slot in entry):
                    raise ValueError(f"messages use {{{{variant_text.{slot}}}}}: variant_text.{variant} needs a "
                                     f"slot {slot!r}")

    @property
    def default_variants(self) -> list[str]:
        """What a run covers when no variant is asked for: the base variant, or every variant if the
        scenario has no base (e.g. KPI's mandated and incentivized)."""
        return ["base"] if "base" in self.variants else list(self.variants)

    def content_hash(self) -> str:
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def pack_hash(scenarios: list[Scenario]) -> str:
    """One hash for a set of scenarios: changes if any scenario's content changes."""
    digest = hashlib.sha256()
    for sid, h in sorted((s.id, s.content_hash()) for s in scenarios):
        digest.update(f"{sid}={h}\n".encode())
    return digest.hexdigest()[:16]
