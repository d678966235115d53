"""Tools: typed functions over the world or an app's surface. Apps bring their own (envs.world.app); tools that
belong to no app are found by name through the entry-point group `safety_sandbox.tool` (see pyproject.toml)."""

from envs.tools.base import (
    QUALIFIER,
    TOOLS,
    Tool,
    ToolError,
    ToolResult,
    ToolSpec,
    nameable_tools,
    registered_tools,
    tool_name_problem,
    tool_target,
    tools_for,
    world_tools,
)

__all__ = ["QUALIFIER", "TOOLS", "Tool", "ToolError", "ToolResult", "ToolSpec", "nameable_tools", "registered_tools",
           "tool_name_problem", "tool_target", "tools_for", "world_tools"]
