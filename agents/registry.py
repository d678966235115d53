"""`agent=<name>` resolves here."""

from __future__ import annotations

from agents.base import Agent
from agents.react import ReactAgent
from agents.scripted import NoopAgent, RandomAgent, ReferenceAgent
from models.spec import ModelConfig, make_chat_model

AGENT_NAMES = ("react", "reference-good", "reference-bad", "random", "noop")
MODEL_AGENTS = ("react",)


def make_agent(name: str, model: ModelConfig, seed: int = 0) -> Agent:
    if name == "react":
        return ReactAgent(make_chat_model(model), model_info=model.public())
    if name == "reference-good":
        return ReferenceAgent("good")
    if name == "reference-bad":
        return ReferenceAgent("bad")
    if name == "random":
        return RandomAgent(seed=seed)
    if name == "noop":
        return NoopAgent()
    raise ValueError(f"unknown agent {name!r}; available: {', '.join(AGENT_NAMES)}")
