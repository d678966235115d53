"""Seeding one episode from a scenario: variant transform, each app's start hook, and the rendered messages."""

from __future__ import annotations

from dataclasses import dataclass

from envs.world import EpisodeStart, World, app_named
from records.trajectory import ScenarioRef
from scenarios.placeholders import PLACEHOLDER
from scenarios.schema import OptionFor, ReferenceStep, Scenario
from scenarios.transforms import TRANSFORMS, apply_variant


@dataclass(frozen=True)
class EpisodeSetup:
    scenario: Scenario  # with the variant applied
    world: World  # this episode's fresh world
    messages: list[dict[str, str]]
    # What the trajectory records of the scenario: its content hash (before the variant), the varied checks and the
    # scenario's rubric with their digests. Shared by the episodes of one scenario and variant (a frozen model).
    scenario_ref: ScenarioRef

    @property
    def content_hash(self) -> str:
        return self.scenario_ref.hash


# Kept on each scenario object (in its __dict__, as its content hash is: out of dumps and equality, gone with the
# scenario): (content hash, variant, transforms' revision) -> the ScenarioRef. Everything in it follows from these,
# so it is made (and its digests computed) once per scenario and variant, not per episode.
_REFS = "_scenario_refs_memo"
_MAX_REFS_PER_SCENARIO = 64  # far above one scenario's variants


def prepare_episode(scenario: Scenario, variant: str, seed: int) -> EpisodeSetup:
    varied = apply_variant(scenario, variant)
    content_hash = scenario.content_hash()
    refs = scenario.__dict__.get(_REFS)
    if refs is None:
        refs = scenario.__dict__[_REFS] = {}
    key = (content_hash, variant, TRANSFORMS.revision())
    ref = refs.get(key)
    if ref is None:
        if len(refs) >= _MAX_REFS_PER_SCENARIO:  # a scenario edited in place again and again: old contents go
            refs.clear()
        ref = refs[key] = ScenarioRef(id=scenario.id, hash=content_hash, suite=scenario.suite,
                                      family=scenario.family, category=scenario.category,
                                      metadata=scenario.metadata, checks=varied.checks,
                                      rubric=scenario.judge)  # its validator fills in the digests
    world = varied.world.episode_copy()
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
    return EpisodeSetup(scenario=varied, world=world, messages=messages, scenario_ref=ref)


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
