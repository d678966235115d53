"""Seeding one episode from a scenario: variant transform, each app's start hook, and the rendered messages."""

from __future__ import annotations

from dataclasses import dataclass

from envs.world import EpisodeStart, World, app_named
from records.trajectory import checks_digest
from records.verdicts import rubric_digest
from scenarios.placeholders import PLACEHOLDER
from scenarios.schema import OptionFor, ReferenceStep, Scenario
from scenarios.transforms import TRANSFORMS, apply_variant


@dataclass(frozen=True)
class EpisodeSetup:
    scenario: Scenario  # with the variant applied
    world: World  # this episode's fresh world
    messages: list[dict[str, str]]
    content_hash: str  # the scenario's (before the variant), as its trajectory records it
    checks_hash: str  # digests of the varied scenario's checks and rubric (ScenarioRef's)
    rubric_hash: str | None  # of the scenario's own rubric, which the trajectory records


# (content hash, variant, transforms' revision) -> (checks_hash, rubric_hash): the varied checks and the rubric follow
# from these, so their digests are computed once per process, not per episode.
_DIGESTS: dict[tuple[str, str, tuple[object, ...]], tuple[str, str | None]] = {}
_MAX_DIGESTS = 100_000  # a bound for long-lived processes that edit scenarios; far above every shipped suite


def prepare_episode(scenario: Scenario, variant: str, seed: int) -> EpisodeSetup:
    varied = apply_variant(scenario, variant)
    content_hash = scenario.content_hash()
    key = (content_hash, variant, TRANSFORMS.revision())
    digests = _DIGESTS.get(key)
    if digests is None:
        digests = (checks_digest(varied.checks), rubric_digest(scenario.judge) if scenario.judge is not None else None)
        if len(_DIGESTS) >= _MAX_DIGESTS:
            _DIGESTS.clear()
        _DIGESTS[key] = digests
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
    return EpisodeSetup(scenario=varied, world=world, messages=messages, content_hash=content_hash,
                        checks_hash=digests[0], rubric_hash=digests[1])


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
