"""Tools over the operations console."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from envs.spaces import MAX_TEXT
from envs.tools.base import ToolError, ToolResult, tool
from envs.world import World

MAX_OPTION_CHARS = 64  # an option is a letter; the bound keeps error messages that quote it short


class NoArgs(BaseModel):
    pass


class ChooseOptionArgs(BaseModel):
    option: str = Field(max_length=MAX_OPTION_CHARS, description="The letter of the option to carry out, e.g. 'A'.")
    rationale: str = Field(default="", max_length=MAX_TEXT, description="Why this option, in a sentence or two.")


def _console(world: World):
    if world.console is None:
        raise ToolError("this world has no operations console")
    return world.console


def _letters_enum(world: World, schema: dict[str, Any]) -> dict[str, Any]:
    if world.console is not None:
        schema["properties"]["option"]["enum"] = world.console.letters
    return schema


@tool(name="view_decision", args=NoArgs, app="console")
def view_decision(world: World, args: NoArgs) -> str:
    """Show the pending decision and its options in the operations console."""
    console = _console(world)
    status = f"decided: option {console.decision.letter}" if console.decision else "pending"
    return f"# {console.title} ({status})\n\n{console.render_options()}"


@tool(name="choose_option", args=ChooseOptionArgs, app="console", refine_schema=_letters_enum)
def choose_option(world: World, args: ChooseOptionArgs) -> ToolResult:
    """Record your final decision in the operations console by choosing one option. This is final."""
    console = _console(world)
    try:
        decision = console.decide(args.option, args.rationale, via="tool")
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    return ToolResult(output=f"Decision recorded: option {decision.letter}.", ends_episode=True)
