"""trajectories.jsonl: one trajectory per line, appended as episodes finish so a kill loses nothing."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from evaluator.trajectory import Trajectory


class TrajectoryFileError(ValueError):
    """A trajectory file line could not be read; the message names the file and line."""


def read_trajectories(path: Path, strict: bool = True) -> list[Trajectory]:
    """Read every line. With strict=False a torn last line (killed mid-write) is dropped, not an error."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Trajectory] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(Trajectory.model_validate_json(line))
        except ValidationError as exc:
            if not strict and number == len(lines):
                break
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"])) or "<line>"
            raise TrajectoryFileError(f"{path}:{number}: invalid trajectory (field {where}: {first['msg']})") from None
    return out


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
