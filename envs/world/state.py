"""The world: the states of the apps a scenario seeds, plus the agent's log, read and written by every surface.

A world holds no list of apps: each key under `world:` names a registered app (envs.world.app) and is validated by
that app's state model, so a new app is added without touching this file. `world.<app>` is the app's state, or
None for a registered app the world does not host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from envs.plugins import PluginError
from envs.world.app import APPS, app_named

# Worlds recorded before apps were units carry these keys as null when the app is absent. Keeping them keeps the
# recorded shape of pre- and post-worlds and every scenario's content hash; other apps appear only when seeded.
RECORDED_WHEN_ABSENT = ("console", "files")
AGENT_LOG = "agent"  # the world's own field, not an app


class Refusal(BaseModel):
    reason: str


class AgentLog(BaseModel):
    """What the agent declared through first-class actions (refusal, finishing), kept in state so
    checks read it the same way on every backend."""

    refusals: list[Refusal] = Field(default_factory=list)
    final_message: str | None = None


class World(BaseModel):
    # The apps' states are kept as extra attributes, each validated by its app's state model (below).
    model_config = ConfigDict(extra="allow")

    agent: AgentLog = Field(default_factory=AgentLog)

    @model_validator(mode="wrap")
    @classmethod
    def _app_states(cls, data: Any, handler: ModelWrapValidatorHandler[World]) -> World:
        if not isinstance(data, dict):
            return handler(data)
        states: dict[str, BaseModel] = {}
        problems: list[InitErrorDetails] = []
        for name, value in data.items():
            if name == AGENT_LOG or value is None:  # null: an app the world does not host (as recorded worlds say)
                continue
            if not isinstance(name, str):
                problems.append(_problem((str(name),), value, f"app names are text, not {type(name).__name__}"))
                continue
            if hasattr(cls, name):  # `world.<app>` must reach the app, not a method or field of the world
                problems.append(_problem((name,), value, f"{name!r} is a name of the world itself, not an app"))
                continue
            try:
                state_model = app_named(name).state_model
            except PluginError as exc:  # unknown (with close names and what exists) or a broken plugin
                problems.append(_problem((name,), value, str(exc)))
                continue
            try:
                states[name] = state_model.model_validate(value)
            except ValidationError as exc:
                problems += [InitErrorDetails(type=e["type"], loc=(name, *e["loc"]), input=e["input"],
                                              ctx=e.get("ctx", {})) for e in exc.errors()]
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        world = handler({AGENT_LOG: data[AGENT_LOG]} if AGENT_LOG in data else {})
        world.__pydantic_extra__.update(states)
        return world

    @model_serializer(mode="wrap")
    def _recorded_shape(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        dumped = handler(self)
        shaped: dict[str, Any] = {} if info.exclude_none else dict.fromkeys(RECORDED_WHEN_ABSENT)
        shaped.update({k: v for k, v in dumped.items() if k != AGENT_LOG})
        if AGENT_LOG in dumped:
            shaped[AGENT_LOG] = dumped[AGENT_LOG]
        return shaped

    if not TYPE_CHECKING:
        def __getattr__(self, name: str) -> Any:
            # An app's state first, straight from the extras (checks read `world.<app>` at every step); pydantic's
            # own lookup, which also serves private attributes, only for the rest.
            states = self.__pydantic_extra__
            if states is not None and name in states:
                return states[name]
            try:
                return super().__getattr__(name)
            except AttributeError:
                if not name.startswith("_") and name in APPS:
                    return None  # a registered app this world does not host
                raise

    def episode_copy(self) -> World:
        """A copy that an episode may change without changing this world, made by each app (App.copy_state): a
        deep copy of each state, or a cheaper one sharing only frozen parts (the console's options)."""
        copy = self.model_copy()  # shallow: a new field dict and a new dict of app states, filled below
        agent = self.agent
        copy.__dict__[AGENT_LOG] = agent.model_copy(update={"refusals": [r.model_copy() for r in agent.refusals]})
        extra = copy.__pydantic_extra__
        for name, state in self.app_states().items():
            extra[name] = app_named(name).copy_state(state)
        return copy

    def recorded(self) -> dict[str, Any]:
        """`model_dump(mode="json")`, the shape trajectories record, made from each state's own serializer: a third
        of the cost (pydantic infers the type of each extra value when it dumps the world as a whole)."""
        shaped: dict[str, Any] = dict.fromkeys(RECORDED_WHEN_ABSENT)
        for name, state in (self.__pydantic_extra__ or {}).items():
            shaped[name] = None if state is None else state.__pydantic_serializer__.to_python(state, mode="json")
        agent = self.agent
        shaped[AGENT_LOG] = agent.__pydantic_serializer__.to_python(agent, mode="json")
        return shaped

    def app_states(self) -> dict[str, BaseModel]:
        """The state of each app this world hosts, by app name."""
        return {name: state for name, state in (self.__pydantic_extra__ or {}).items() if state is not None}

    def apps(self) -> set[str]:
        """Names of the apps this world hosts."""
        return set(self.app_states())

    def receive_final_message(self, text: str) -> None:
        """A plain-text reply ends the episode: it is logged, and each app may read it (the console's text answer)."""
        self.agent.final_message = text
        for name, state in self.app_states().items():
            app_named(name).on_final_message(state, text)


def _problem(loc: tuple[str, ...], value: object, message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("unknown_app", "{message}", {"message": message}), loc=loc,
                            input=value)
