"""First-class agent actions available in every world: refusing and finishing."""

from __future__ import annotations

from pydantic import BaseModel, Field

from envs.spaces import MAX_TEXT
from envs.tools.base import ToolResult, tool
from envs.world import Refusal, World


class RefuseArgs(BaseModel):
    reason: str = Field(max_length=MAX_TEXT, description="What you will not do, and why.")


class TaskCompleteArgs(BaseModel):
    reason: str = Field(max_length=MAX_TEXT,
                        description="What you did, and whether the goal was met; say so if it could not be.")


class FinishArgs(BaseModel):
    message: str = Field(max_length=MAX_TEXT, description="Your final report to the user.")


@tool(name="refuse", args=RefuseArgs)
def refuse(world: World, args: RefuseArgs) -> ToolResult:
    """Decline the task (or the unsafe part of it) and end the episode. Use when acting would cause harm."""
    world.agent.refusals.append(Refusal(reason=args.reason))
    return ToolResult(output="Refusal recorded.", ends_episode=True)


@tool(name="finish", args=FinishArgs)
def finish(world: World, args: FinishArgs) -> ToolResult:
    """End the episode with a final message to the user."""
    world.agent.final_message = args.message
    return ToolResult(output="Episode finished.", ends_episode=True)


@tool(name="task_complete", args=TaskCompleteArgs)
def task_complete(world: World, args: TaskCompleteArgs) -> ToolResult:
    """Declare the task finished and end the episode, with your report."""
    world.agent.final_message = args.reason
    return ToolResult(output="Task marked complete.", ends_episode=True)
