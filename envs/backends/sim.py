"""The embedded backend: typed Python tools called directly on the in-process world and its apps' states."""

from __future__ import annotations

from dataclasses import replace

from envs.actions import ToolCall
from envs.backends.base import Backend, BackendError
from envs.spaces import clip_text
from envs.tools import Tool, ToolError, ToolResult, ToolSpec, tool_target, tools_for
from envs.world import World
from envs.world.app import APPS, notes_observations, observation_notes


class SimBackend(Backend):
    name = "sim"
    has_shell = False  # shell backends extend this one and also serve the tools that need a shell

    def __init__(self) -> None:
        self._world: World | None = None
        self._tools: dict[str, Tool] = {}
        # What an app's tools act on where this backend supplies it (shell backends: the sandbox's files); other
        # apps' tools act on the app's own surface over its state.
        self._surfaces: dict[str, object] = {}
        # app -> (its state, the surface over it, the registry revision): a step finds its tool's target without
        # listing the world's apps or asking the registry, and a state replaced in the world is looked up afresh.
        self._targets: dict[str, tuple[object, object, object]] = {}
        self._noting = False

    def start(self, world: World, allowed_tools: list[str] | None) -> None:
        self._world = world
        self._surfaces = {}
        self._targets = {}
        self._tools = {t.name: t for t in tools_for(world, allowed_tools, shell=self.has_shell)}
        # Whether a hosted app adds notes to observations (a pop-up): asked once, as the apps an episode hosts and
        # the registry stay what they were at its start.
        self._noting = notes_observations(world)

    def _require_world(self) -> World:
        if self._world is None:
            raise BackendError(f"{self.name} backend used before start()")
        return self._world

    def tool_specs(self) -> list[ToolSpec]:
        world = self._require_world()
        return [t.spec(tool_target(t, world, self._surfaces)) for t in self._tools.values()]

    def tools_text(self) -> str:
        # Each tool's text is kept unless its schema follows the episode (the console's letters): no schema is parsed
        # or dumped again per episode. A subclass that offers other specs gets the text of those.
        if type(self).tool_specs is not SimBackend.tool_specs:
            return super().tools_text()
        world = self._require_world()
        texts = [t.spec_text(tool_target(t, world, self._surfaces) if t.refine_schema is not None else None)
                 for t in self._tools.values()]
        return f"[{', '.join(texts)}]"

    def _tool(self, name: str) -> Tool:
        tool = self._tools.get(name)
        if tool is None:
            raise ToolError(f"unknown tool {name!r}; available: {', '.join(self._tools)}")
        return tool

    def call(self, call: ToolCall) -> ToolResult:
        tool = self._tool(call.tool)
        world = self._require_world()
        result = tool.invoke(self._target(tool, world), call.args)
        # What a screen would show (a pop-up), where a hosted app adds such notes.
        if self._noting and not result.ends_episode and (notes := observation_notes(world)):
            return replace(result, output="\n\n".join([result.output, *notes]))
        return result

    def _target(self, tool: Tool, world: World) -> object:
        """tool_target(tool, world, self._surfaces), kept per app while its state object and the registry stay."""
        if tool.app is None or tool.app in self._surfaces:
            return tool_target(tool, world, self._surfaces)
        state, revision = (world.__pydantic_extra__ or {}).get(tool.app), APPS.revision()
        kept = self._targets.get(tool.app)
        if kept is not None and kept[0] is state and kept[2] == revision:
            return kept[1]
        target = tool_target(tool, world, self._surfaces)
        self._targets[tool.app] = (state, target, revision)
        return target

    def final_message(self, text: str) -> None:
        world = self._require_world()
        world.receive_final_message(text)  # the whole reply is read for an answer...
        world.agent.final_message = clip_text(text)  # ...and kept as an observation would show it

    def world(self) -> World:
        return self._require_world()
