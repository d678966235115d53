"""Importing this package registers every tool."""

from envs.tools import agent, console, files  # noqa: F401  (registration side effect)
from envs.tools.base import Tool, ToolError, ToolResult, ToolSpec, registered_tools, tools_for

__all__ = ["Tool", "ToolError", "ToolResult", "ToolSpec", "registered_tools", "tools_for"]
