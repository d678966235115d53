"""trajectories.jsonl: one trajectory per line, appended as episodes finish so a kill loses nothing."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from envs.world.validation_messages import describe_problems
from records.trajectory import Trajectory


class TrajectoryFileError(ValueError):
    """A trajectory file line could not be read; the message names the file and line."""


@dataclass(frozen=True)
class TrajectoryLine:
    """A trajectory as read, with where it was and the JSON as written (fields the model derives itself,
    e.g. a verdict's label, are dropped when parsed; the raw JSON still shows what the file claims)."""

    number: int
    raw: dict[str, Any]
    trajectory: Trajectory


def read_trajectories(path: Path, strict: bool = True) -> list[Trajectory]:
    """Read every line. With strict=False a torn last line (killed mid-write) is dropped, not an error."""
    return [line.trajectory for line in read_trajectory_lines(path, strict)]


def read_trajectory_lines(path: Path, strict: bool = True) -> list[TrajectoryLine]:
    if not path.exists():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TrajectoryFileError(f"{path}: cannot read ({exc})") from None
    out: list[TrajectoryLine] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            out.append(TrajectoryLine(number, raw, Trajectory.model_validate(raw)))
        except (ValueError, ValidationError) as exc:
            if not strict and number == len(lines):
                break
            raise TrajectoryFileError(f"{path}:{number}: invalid trajectory ({_describe(exc)})") from None
    return out


def _describe(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return f"field {describe_problems(exc, '<line>', first_only=True)}"
    return f"not JSON: {exc}"


def compact_for_resume(path: Path) -> list[Trajectory]:
    """Keep one finished trajectory per episode and drop errored or torn ones, so they are rerun.
    Rewrites the file atomically; returns the kept trajectories."""
    kept: dict[str, Trajectory] = {}
    for t in read_trajectories(path, strict=False):
        if t.finished:
            kept[t.episode_id] = t
    if path.exists():
        tmp = path.with_suffix(".jsonl.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for t in kept.values():
                fh.write(t.model_dump_json() + "\n")
        os.replace(tmp, path)
    return list(kept.values())


class TrajectoryWriter:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a", encoding="utf-8")

    def write(self, trajectory: Trajectory) -> None:
        self._fh.write(trajectory.model_dump_json() + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
