"""Agent actions: a tool call or a final plain-text message, given as JSON text or as Python objects."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class FinalMessage(BaseModel):
    """A plain-text reply that ends the episode (how chat-only models answer)."""

    model_config = ConfigDict(extra="forbid")
    message: str


Action = ToolCall | FinalMessage


class ActionError(ValueError):
    """The action could not be understood; the env reports it to the agent and the episode goes on."""


ACTION_FORMAT = ('an action is JSON: {"tool": "<name>", "args": {...}} or {"message": "<final reply>"}; '
                 'OpenAI-style {"name": ..., "arguments": ...} is accepted too')


def parse_action(raw: Any) -> Action:
    if isinstance(raw, ToolCall | FinalMessage):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ActionError(f"action is not valid JSON ({exc.msg} at char {exc.pos}); {ACTION_FORMAT}") from None
    if not isinstance(raw, dict):
        raise ActionError(f"action must be a JSON object, got {type(raw).__name__}; {ACTION_FORMAT}")
    raw = _normalise_openai_style(raw)
    try:
        if "message" in raw:
            return FinalMessage.model_validate(raw)
        return ToolCall.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'action'}: {e['msg']}" for e in exc.errors())
        raise ActionError(f"malformed action ({problems}); {ACTION_FORMAT}") from None


def _normalise_openai_style(raw: dict[str, Any]) -> dict[str, Any]:
    if "function" in raw and isinstance(raw["function"], dict):
        raw = raw["function"]
    if "name" in raw and "tool" not in raw:
        args = raw.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                raise ActionError(f"tool arguments are not valid JSON ({exc.msg})") from None
        return {"tool": raw["name"], "args": args}
    return raw

