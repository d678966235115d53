"""Tools: typed functions over the world. Each is found by name through the entry-point group `safety_sandbox.tool`
(see pyproject.toml)."""

from envs.tools.base import TOOLS, Tool, ToolError, ToolResult, ToolSpec, registered_tools, tools_for

__all__ = ["TOOLS", "Tool", "ToolError", "ToolResult", "ToolSpec", "registered_tools", "tools_for"]
