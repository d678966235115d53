"""trajectories.jsonl: one trajectory per line, appended as episodes finish so a kill loses nothing.

Lines end with "\\n" only: a trajectory's JSON may hold U+2028 or U+0085 unescaped (an agent can write them), which
`str.splitlines` would take for line ends. Files are read line by line, never whole, so reading is flat in memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
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


@dataclass(frozen=True)
class JsonLine:
    """A trajectory as read, with the exact text of its line (without the line end)."""

    number: int
    text: str
    trajectory: Trajectory


def read_trajectories(path: Path, strict: bool = True) -> list[Trajectory]:
    """Read every line. With strict=False a torn last line (killed mid-write) is dropped, not an error."""
    return [line.trajectory for line in iter_json_lines(path, strict)]


def read_trajectory_lines(path: Path, strict: bool = True) -> list[TrajectoryLine]:
    return [TrajectoryLine(line.number, json.loads(line.text), line.trajectory)
            for line in iter_json_lines(path, strict)]


def iter_json_lines(path: Path, strict: bool = True) -> Iterator[JsonLine]:
    """Each trajectory of the file in order, parsed one line at a time. A line that does not parse raises
    TrajectoryFileError naming the file and line; with strict=False the last line may be torn (dropped)."""
    for number, line, is_last in _lines(path):
        text = line.removesuffix("\n")
        if not text.strip():
            continue
        parsed = _parse(path, number, text, tolerate_torn=not strict and is_last)
        if parsed is None:
            return
        yield JsonLine(number, text, parsed)


def iter_line_texts(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(number, text, whether it is the last line) of each non-blank line, unparsed, for readers that parse a
    part of each trajectory themselves."""
    for number, line, is_last in _lines(path):
        text = line.removesuffix("\n")
        if text.strip():
            yield number, text, is_last


def invalid_line(path: Path, number: int, text: str, exc: ValidationError) -> TrajectoryFileError:
    return TrajectoryFileError(f"{path}:{number}: invalid trajectory ({_describe(text, exc)})")


def _parse(path: Path, number: int, text: str, tolerate_torn: bool) -> Trajectory | None:
    try:
        return Trajectory.model_validate_json(text)
    except ValidationError as exc:
        if tolerate_torn:
            return None
        raise invalid_line(path, number, text, exc) from None


def _lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(number, the line with its "\n" if it has one, whether it is the file's last line)."""
    try:
        with path.open(encoding="utf-8", newline="\n") as fh:
            previous: str | None = None
            number = 0
            for line in fh:
                if previous is not None:
                    yield number, previous, False
                previous = line
                number += 1
            if previous is not None:
                yield number, previous, True
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        raise TrajectoryFileError(f"{path}: cannot read ({exc})") from None


def _describe(text: str, exc: ValidationError) -> str:
    try:
        json.loads(text)
    except ValueError as not_json:
        return f"not JSON: {not_json}"
    return f"field {describe_problems(exc, '<line>', first_only=True)}"


def compact_for_resume(path: Path) -> set[str]:
    """Keep one finished trajectory per episode (the last) and drop errored, torn or blank lines, so those
    episodes are rerun. Kept lines are copied as written (never re-serialised) into a new file swapped in
    atomically, and only when something is dropped. Returns the ids of the finished episodes kept."""
    keep: dict[str, int] = {}  # episode id -> number of the line kept for it
    rewrite = False
    for number, line, is_last in _lines(path):
        text = line.removesuffix("\n")
        parsed = _parse(path, number, text, tolerate_torn=is_last) if text.strip() else None
        if parsed is None or not parsed.finished or parsed.episode_id in keep or not line.endswith("\n"):
            rewrite = True  # a blank, torn, errored, repeated or unterminated line goes
        if parsed is not None and parsed.finished:
            keep[parsed.episode_id] = number
    if rewrite:
        _rewrite_keeping(path, set(keep.values()))
    return set(keep)


def _rewrite_keeping(path: Path, numbers: set[int]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as out:
        for number, line, _ in _lines(path):
            if number in numbers:
                out.write(line.removesuffix("\n") + "\n")
    os.replace(tmp, path)


class TrajectoryWriter:
    """Appends one trajectory per line and flushes it at once (a kill loses nothing finished)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a", encoding="utf-8", newline="\n")

    def write(self, trajectory: Trajectory) -> None:
        self.write_json(trajectory.model_dump_json())

    def write_json(self, text: str) -> None:
        """A trajectory already serialised (one line of JSON)."""
        self._fh.write(text + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
