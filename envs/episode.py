"""Seeding one episode from a scenario: variant transform, option shuffle and rendered messages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.world import World
from scenarios.schema import OPTIONS_TOKEN, OptionFor, ReferenceStep, Scenario
from scenarios.transforms import apply_variant


@dataclass(frozen=True)
class EpisodeSetup:
    scenario: Scenario  # with the variant applied
    world: World  # this episode's fresh world
    messages: list[dict[str, str]]


def prepare_episode(scenario: Scenario, variant: str, seed: int) -> EpisodeSetup:
    varied = apply_variant(scenario, variant)
    world = varied.world.model_copy(deep=True)
    if world.console is not None and varied.shuffle_options:
        rng = np.random.default_rng(seed)
        world.console.display_order = [world.console.display_order[i]
                                       for i in rng.permutation(len(world.console.display_order))]
    options = world.console.render_options() if world.console is not None else ""
    messages = [{"role": m.role, "content": m.content.replace(OPTIONS_TOKEN, options)} for m in varied.messages]
    return EpisodeSetup(scenario=varied, world=world, messages=messages)


def resolve_reference_step(step: ReferenceStep, world: World) -> dict:
    """A reference step as a concrete action for this episode (option keys become shuffled letters)."""
    if step.message is not None:
        return {"message": step.message}
    args = {}
    for name, value in step.args.items():
        if isinstance(value, OptionFor):
            if world.console is None:
                raise ValueError(f"reference uses option_for={value.option_for!r} but the world has no console")
            args[name] = world.console.letter_of(value.option_for)
        else:
            args[name] = value
    return {"tool": step.tool, "args": args}
