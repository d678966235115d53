"""The embedded backend: typed Python tools called directly on the in-process world."""

from __future__ import annotations

from envs.actions import ToolCall
from envs.backends.base import Backend, BackendError, register_backend
from envs.tools import Tool, ToolError, ToolResult, ToolSpec, tools_for
from envs.world import World


@register_backend
class SimBackend(Backend):
    name = "sim"

    def __init__(self) -> None:
        self._world: World | None = None
        self._tools: dict[str, Tool] = {}

    def start(self, world: World, allowed_tools: list[str] | None) -> None:
        self._world = world
        self._tools = {t.name: t for t in tools_for(world, allowed_tools)}

    def _require_world(self) -> World:
        if self._world is None:
            raise BackendError("sim backend used before start()")
        return self._world

    def tool_specs(self) -> list[ToolSpec]:
        world = self._require_world()
        return [t.spec(world) for t in self._tools.values()]

    def call(self, call: ToolCall) -> ToolResult:
        world = self._require_world()
        tool = self._tools.get(call.tool)
        if tool is None:
            raise ToolError(f"unknown tool {call.tool!r}; available: {', '.join(self._tools)}")
        return tool.invoke(world, call.args)

    def final_message(self, text: str) -> None:
        self._require_world().receive_final_message(text)

    def world(self) -> World:
        return self._require_world()
