"""One step of an episode as the env recorded it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class StepRecord(BaseModel):
    """Texts are stored as the agent saw them: clipped (with a note of how much was cut) and valid Unicode,
    so a trajectory stays small and serialisable whatever the agent sent or read."""

    index: int
    raw_action: str
    action: dict[str, Any] | None = None  # the parsed action; None when it could not be parsed
    observation: str = ""
    error: str | None = None
    ends_episode: bool = False
    duration_s: float = 0.0
