"""Tools: typed functions over the world. Each declares its argument model, the app it needs and
whether calling it ends the episode. The registry turns them into JSON schemas for agents."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ValidationError

from envs.plugins import PluginError, Registry, instance_of
from envs.world import World
from envs.world.validation_messages import describe_problems


class ToolError(Exception):
    """A tool call the world rejects (bad letter, already decided, ...): shown to the agent as an error."""


class ToolResult(BaseModel):
    output: str
    ends_episode: bool = False


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]

    def as_openai(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args_model: type[BaseModel]
    fn: Callable[[World, Any], ToolResult]
    app: str | None = None  # the world app the tool needs; None = always available
    needs_shell: bool = False  # only shell backends (local, docker) can serve it
    refine_schema: Callable[[World, dict[str, Any]], dict[str, Any]] | None = None

    def spec(self, world: World) -> ToolSpec:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        if self.refine_schema is not None:
            schema = self.refine_schema(world, schema)
        return ToolSpec(self.name, self.description, schema)

    def invoke(self, world: World, args: dict[str, Any]) -> ToolResult:
        try:
            parsed = self.args_model.model_validate(args)
        except ValidationError as exc:
            raise ToolError(f"bad arguments for {self.name}: {describe_problems(exc, 'arguments')}") from None
        return self.fn(world, parsed)


# Found through the entry-point group `safety_sandbox.tool`; each entry point names a Tool (what `@tool` makes).
TOOLS: Registry[Tool] = Registry("tool", instance_of(Tool))


def register_tool(tool: Tool) -> Tool:
    """Register a tool in this process only (tests); installed packages declare an entry point instead."""
    return TOOLS.add(tool.name, tool)


def tool(*, name: str, args: type[BaseModel], app: str | None = None, needs_shell: bool = False,
         refine_schema: Callable[[World, dict[str, Any]], dict[str, Any]] | None = None
         ) -> Callable[[Callable[[World, Any], ToolResult | str]], Tool]:
    """Decorator: make `fn(world, args) -> ToolResult | str` a Tool (its docstring describes it); an entry point in
    `safety_sandbox.tool` names the result."""

    def wrap(fn: Callable[[World, Any], ToolResult | str]) -> Tool:
        def run(world: World, parsed: Any) -> ToolResult:
            result = fn(world, parsed)
            return result if isinstance(result, ToolResult) else ToolResult(output=result)

        return Tool(name=name, description=(fn.__doc__ or "").strip(), args_model=args, fn=run,
                    app=app, needs_shell=needs_shell, refine_schema=refine_schema)

    return wrap


def _tool(name: str) -> Tool:
    found = TOOLS.get(name)
    if found.name != name:  # agents call a tool by its own name: the entry point must use the same one
        raise PluginError(f"tool {name!r} is a Tool named {found.name!r}; the entry point and the tool must use "
                          "one name")
    return found


def registered_tools() -> Mapping[str, Tool]:
    """Every registered tool by name, read-only (scenario validation checks the names a scenario offers)."""
    return MappingProxyType({name: _tool(name) for name in TOOLS.names()})


def tools_for(world: World, allowed: list[str] | None, shell: bool = False) -> list[Tool]:
    """The tools an episode offers: those whose app the world hosts (and that need a shell only where
    there is one), narrowed to `allowed` if given."""
    apps = world.apps()
    known = TOOLS.names()
    names = allowed if allowed is not None else known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(known)}")
    tools = [_tool(n) for n in names]
    return [t for t in tools if (t.app is None or t.app in apps) and (shell or not t.needs_shell)]
