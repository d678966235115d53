"""Seeding one episode from a scenario: variant transform, each app's start hook, and the rendered messages."""

from __future__ import annotations

from dataclasses import dataclass

from envs.world import EpisodeStart, World, app_named
from scenarios.placeholders import PLACEHOLDER
from scenarios.schema import OptionFor, ReferenceStep, Scenario
from scenarios.transforms import apply_variant


@dataclass(frozen=True)
class EpisodeSetup:
    scenario: Scenario  # with the variant applied
    world: World  # this episode's fresh world
    messages: list[dict[str, str]]


def prepare_episode(scenario: Scenario, variant: str, seed: int) -> EpisodeSetup:
    varied = apply_variant(scenario, variant)
    world = varied.world.model_copy(deep=True)
    start = EpisodeStart(seed=seed, shuffle_options=varied.shuffle_options)
    fills: dict[str, str] = {}
    for name, state in world.app_states().items():
        app = app_named(name)
        app.on_episode_start(state, start)
        filled = app.placeholders(state)
        if undeclared := sorted(set(filled) - set(app.placeholder_names)):
            raise ValueError(f"app {name!r} fills placeholders it does not declare in placeholder_names: "
                             f"{', '.join(undeclared)}")
        fills.update({f"{{{{{key}}}}}": text for key, text in filled.items()})
    # One pass, so a filled text is never read for placeholders itself.
    messages = [{"role": m.role, "content": PLACEHOLDER.sub(lambda found: fills.get(found.group(0), found.group(0)),
                                                             m.content)} for m in varied.messages]
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
