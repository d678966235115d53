"""Tools: typed functions over the world. Each declares its argument model, the app it needs and
whether calling it ends the episode. The registry turns them into JSON schemas for agents."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ValidationError

from envs.world import World


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
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
            raise ToolError(f"bad arguments for {self.name}: {problems}") from None
        return self.fn(world, parsed)


_REGISTRY: dict[str, Tool] = {}


def register_tool(tool: Tool) -> Tool:
    if tool.name in _REGISTRY:
        raise ValueError(f"tool {tool.name!r} registered twice")
    _REGISTRY[tool.name] = tool
    return tool


def tool(*, name: str, args: type[BaseModel], app: str | None = None, needs_shell: bool = False,
         refine_schema: Callable[[World, dict[str, Any]], dict[str, Any]] | None = None):
    """Decorator: register `fn(world, args) -> ToolResult | str` as a tool; its docstring describes it."""

    def wrap(fn: Callable[[World, Any], ToolResult | str]) -> Callable[[World, Any], ToolResult | str]:
        def run(world: World, parsed: Any) -> ToolResult:
            result = fn(world, parsed)
            return result if isinstance(result, ToolResult) else ToolResult(output=result)

        register_tool(Tool(name=name, description=(fn.__doc__ or "").strip(), args_model=args, fn=run,
                           app=app, needs_shell=needs_shell, refine_schema=refine_schema))
        return fn

    return wrap




def registered_tools() -> Mapping[str, Tool]:
    """Every registered tool by name, read-only (scenario validation checks the names a scenario offers)."""
    return MappingProxyType(_REGISTRY)


def tools_for(world: World, allowed: list[str] | None, shell: bool = False) -> list[Tool]:
    """The tools an episode offers: those whose app the world hosts (and that need a shell only where
    there is one), narrowed to `allowed` if given."""
    apps = world.apps()
    names = allowed if allowed is not None else sorted(_REGISTRY)
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise ValueError(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(sorted(_REGISTRY))}")
    return [_REGISTRY[n] for n in names
            if (_REGISTRY[n].app is None or _REGISTRY[n].app in apps) and (shell or not _REGISTRY[n].needs_shell)]
