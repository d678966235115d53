"""The scenario format: a data file validated by pydantic, with a content hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from envs.world import World
from records.checks import Check
from records.verdicts import JudgeRubric
from scenarios.placeholders import (  # noqa: F401  (LETTER_TOKEN re-exported for scenario builders)
    LETTER_TOKEN,
    OPTIONS_TOKEN,
    VARIANT_SLOT,
    VARIANT_TOKEN,
)
from scenarios.validation import ScenarioProblems, static_problems, worlds


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


class DesktopReferences(BaseModel):
    """The same behaviour as the tool references, as desktop actions (click, fill, goto, ...)."""

    model_config = ConfigDict(extra="forbid")
    good: list[ReferenceStep] = Field(min_length=1)
    bad: list[ReferenceStep] = Field(min_length=1)


class References(BaseModel):
    """`good`/`bad`: tool-call steps for tool backends (sim, local, docker); `desktop`: the same behaviour replayed on
    backends whose BackendInfo says `serves_desktop`."""

    model_config = ConfigDict(extra="forbid")
    good: list[ReferenceStep] = Field(min_length=1)
    bad: list[ReferenceStep] = Field(min_length=1)
    # Left out of dumps when absent: scenarios without desktop references dump (and so hash) exactly as they did
    # before the field existed.
    desktop: DesktopReferences | None = Field(default=None, exclude_if=lambda desktop: desktop is None)

    def steps(self, which: str, desktop: bool) -> list[ReferenceStep]:
        """The `which` (good or bad) trajectory for a backend that serves the desktop (`desktop`) or tools."""
        if not desktop:
            return getattr(self, which)
        if self.desktop is None:
            raise ValueError("the scenario has no references.desktop, so its references cannot be replayed on a "
                             "backend that serves the desktop")
        return getattr(self.desktop, which)

    def lists(self) -> Iterator[tuple[str, list[ReferenceStep]]]:
        """Every reference trajectory with its field path (good, bad, desktop.good, desktop.bad)."""
        yield "good", self.good
        yield "bad", self.bad
        if self.desktop is not None:
            yield "desktop.good", self.desktop.good
            yield "desktop.bad", self.desktop.bad


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
    # At least one: with none, `envs.check` would replay nothing and pass.
    # Registered backend names (envs.backend_info), checked against what each serves by scenarios.validation.
    backends: list[str] = Field(default_factory=lambda: ["sim"], min_length=1)
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

    # Where the scenario was read from (a file, an imported item), for messages; not part of its content.
    _origin: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if not self.family:
            self.family = self.suite
        problems = [*self._structure_problems(), *static_problems(self)]
        if problems:
            raise ScenarioProblems(problems)
        return self

    def _structure_problems(self) -> Iterator[str]:
        for field in ("variant_text", "variant_worlds"):
            missing = [v for v in getattr(self, field) if v not in self.variants]
            if missing:
                yield f"field {field}: names variants not in `variants`: {', '.join(missing)}"
        yield from self._variant_slot_problems()
        if not any(c.kind in ("harm", "over_caution") for c in self.checks):
            yield "field checks: a scenario needs at least one harm or over_caution check (what it tests)"
        texts = [m.content for m in self.messages] + [t for entry in self.variant_text.values()
                                                      for t in ([entry] if isinstance(entry, str) else entry.values())]
        if any(OPTIONS_TOKEN in text for text in texts):
            for label, world in worlds(self):
                if world.console is None:
                    yield f"field messages: messages use {OPTIONS_TOKEN} but {label} has no console"
        if self.references is not None:
            yield from self._option_for_problems()

    def _option_for_problems(self) -> Iterator[str]:
        assert self.references is not None
        for which, steps in self.references.lists():
            for i, step in enumerate(steps):
                for name, value in step.args.items():
                    if not isinstance(value, OptionFor):
                        continue
                    for label, world in worlds(self):
                        keys = [o.key for o in world.console.options] if world.console is not None else []
                        if value.option_for not in keys:
                            yield (f"field references.{which}.{i}.args.{name}: option_for {value.option_for!r} "
                                   f"is not a console option key of {label} (options: {', '.join(keys) or 'none'})")

    def _variant_slot_problems(self) -> Iterator[str]:
        """Every {{variant_text}} slot the messages use must be filled by every variant."""
        slots = {m.group(1) for msg in self.messages if "{{variant_text" in msg.content
                 for m in VARIANT_SLOT.finditer(msg.content)}
        if not slots:
            return
        for variant in self.variants:
            entry = self.variant_text.get(variant)
            if entry is None:
                yield (f"field variant_text: messages use {VARIANT_TOKEN}: variant_text needs an entry for every "
                       f"variant (missing: {variant})")
                continue
            for slot in sorted(slots, key=lambda name: name or ""):
                if slot is None and not isinstance(entry, str):
                    yield (f"field variant_text.{variant}: messages use {VARIANT_TOKEN}, so it must be a text, "
                           "not a mapping of slots")
                if slot is not None and not (isinstance(entry, dict) and slot in entry):
                    yield (f"field variant_text.{variant}: messages use {{{{variant_text.{slot}}}}}: it needs a "
                           f"slot {slot!r}")

    @property
    def origin(self) -> str:
        """The file (or imported item) the scenario came from, or its suite when that is unknown."""
        return self._origin or f"suite {self.suite}"

    def from_origin(self, origin: str) -> Scenario:
        """Record where the scenario was read from (kept by copies, left out of its content hash)."""
        self._origin = origin
        return self

    @property
    def default_variants(self) -> list[str]:
        """What a run covers when no variant is asked for: the base variant, or every variant if the
        scenario has no base (e.g. KPI's mandated and incentivized)."""
        return ["base"] if "base" in self.variants else list(self.variants)

    def content_hash(self) -> str:
        """A hash of the scenario's content (its origin left out), the same in every process and version.

        Kept on the object with a fingerprint of the content it was computed from: Python's own hash of pydantic's
        JSON of the model (built in Rust, about a quarter of the hash's cost; 64 bits, keyed per process, so a memo
        carried to another process is computed afresh there). A copy, an assignment or an in-place change anywhere
        inside gives another fingerprint, so a kept hash is not served for other content (short of a 2**-64 chance);
        the one blind spot is a typed float field changed in place between NaN and the infinities (all `null` in that
        JSON). The memo lives in `__dict__` as a cached_property would: left out of dumps and equality, carried (and
        re-checked) by copies."""
        fingerprint = hash(self.__pydantic_serializer__.to_json(self))
        memo = self.__dict__.get(_HASH_MEMO)
        if memo is not None and memo[0] == fingerprint:
            return memo[1]
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
        self.__dict__[_HASH_MEMO] = (fingerprint, digest)
        return digest


_HASH_MEMO = "_content_hash_memo"  # (fingerprint, hash); not a field, so dumps and == ignore it


def pack_hash(scenarios: list[Scenario]) -> str:
    """One hash for a set of scenarios: changes if any scenario's content changes."""
    digest = hashlib.sha256()
    for sid, h in sorted((s.id, s.content_hash()) for s in scenarios):
        digest.update(f"{sid}={h}\n".encode())
    return digest.hexdigest()[:16]
