"""`agent=<name>` resolves here: agents are found by name through the entry-point group `safety_sandbox.agent`
(see pyproject.toml). An entry point names an Agent subclass (built by its `from_spec`) or any factory
`(AgentSpec) -> Agent`."""

from __future__ import annotations

from collections.abc import Callable

from agents.base import Agent, AgentSpec
from envs.plugins import PluginError, Registry
from models.spec import ModelConfig

AgentFactory = Callable[[AgentSpec], Agent]


def _agent_part(obj: object) -> object:
    if callable(obj) and (not isinstance(obj, type) or issubclass(obj, Agent)):
        return obj
    raise TypeError("an agents.base.Agent subclass or a factory (AgentSpec) -> Agent")


AGENTS: Registry[type[Agent] | AgentFactory] = Registry("agent", _agent_part)


def agent_names() -> list[str]:
    return AGENTS.names()


def needs_model(name: str) -> bool:
    """Whether `model=` matters to this agent (scripted agents ignore it)."""
    return bool(getattr(AGENTS.get(name), "needs_model", False))


def make_agent(name: str, model: ModelConfig, seed: int = 0) -> Agent:
    """Raises UnknownPart (a ValueError) naming close matches, or PluginError for a broken plugin."""
    part = AGENTS.get(name)
    spec = AgentSpec(model=model, seed=seed)
    agent = part.from_spec(spec) if isinstance(part, type) else part(spec)
    if not isinstance(agent, Agent):
        raise PluginError(f"agent {name!r} made a {type(agent).__qualname__}, not an agents.base.Agent")
    return agent
