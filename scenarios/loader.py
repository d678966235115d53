"""Read scenario data files; a malformed file is an error, on one line, that names the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from scenarios.bounded_yaml import MAX_FILE_BYTES, YamlLimitError, describe_yaml_error, load_bounded
from scenarios.schema import Scenario
from scenarios.validation import ScenarioProblems

SCENARIO_ROOT = Path(__file__).parent  # the project's own suite folders live here (see scenarios/shipped.py)
MAX_PROBLEMS_SHOWN = 10


class ScenarioError(ValueError):
    """A scenario file or selection is wrong; the message says what and where."""


def load_scenario_file(path: Path) -> Scenario:
    data = read_scenario_data(path)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{path}: {describe_validation_error(exc, data)}") from None
    return scenario.from_origin(str(path))


def read_scenario_data(path: Path) -> dict[str, Any]:
    """The mapping a scenario file holds, read at a bounded cost (size, alias expansion, nesting)."""
    return parse_scenario_bytes(path, read_scenario_bytes(path))


def read_scenario_bytes(path: Path) -> bytes:
    """A scenario file's bytes, at most MAX_FILE_BYTES of them."""
    if not path.is_file():  # a folder, a pipe (which would block) or a device is not a scenario file
        raise ScenarioError(f"{path}: not a regular file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(f"{path}: larger than {MAX_FILE_BYTES:,} bytes, the most a scenario file may hold")
    return raw


def parse_scenario_bytes(path: Path, raw: bytes) -> dict[str, Any]:
    """The mapping `raw` (read from `path`, named in errors) holds."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = load_bounded(text)
    except YamlLimitError as exc:
        raise ScenarioError(f"{path}: too costly to load: {exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {describe_yaml_error(exc)}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario file must hold a mapping, got {type(data).__name__}")
    return data


def describe_validation_error(exc: ValidationError, data: object = None) -> str:
    """Every problem as `field <path>: <what>`, on one line; `data` (the input) lets the path skip the check
    type that pydantic inserts for tagged unions, so it reads as the file is written (checks.2.pattern)."""
    problems: list[str] = []
    for err in exc.errors():
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, ScenarioProblems):  # the scenario-wide rules, each naming its own field
            problems += cause.problems
            continue
        message = err["msg"].removeprefix("Value error, ")
        field = field_path(err["loc"], data)
        problems.append(f"field {field}: {message}" if field else message)
    shown = problems[:MAX_PROBLEMS_SHOWN]
    if len(problems) > len(shown):
        shown.append(f"and {len(problems) - len(shown)} more")
    return shown[0] if len(problems) == 1 else f"{len(problems)} problems: " + "; ".join(shown)


def field_path(loc: tuple[int | str, ...], data: object) -> str:
    """A pydantic error location as a path into the data as written."""
    parts: list[str] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and part not in current and part == current.get("type"):
            continue  # the tag pydantic adds for a discriminated union member
        parts.append(str(part))
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        else:
            current = None
    return ".".join(parts)


def load_suite_dir(directory: Path, suite: str | None = None) -> list[Scenario]:
    """A shipped suite (written, not imported; `suite` defaults to the folder's name): unlike imported ones, every
    scenario must carry good and bad reference trajectories, so `python -m envs.check` can prove its labels."""
    suite = suite or directory.name
    misnamed = sorted(directory.glob("*.yml"))
    if misnamed:
        raise ScenarioError(f"{misnamed[0]}: scenario files end in .yaml (a .yml file would be skipped)")
    seen: dict[str, Path] = {}
    scenarios = []
    for path in sorted(directory.glob("*.yaml")):
        scenario = load_scenario_file(path)
        if scenario.references is None:
            raise ScenarioError(f"{path}: field references: a shipped scenario needs good and bad reference "
                                "trajectories (only imported suites may go without)")
        if scenario.id in seen:
            raise ScenarioError(f"{path}: field id: duplicate scenario id {scenario.id!r} "
                                f"(also in {seen[scenario.id]})")
        if scenario.suite != suite:
            raise ScenarioError(f"{path}: field suite: is {scenario.suite!r} but the file lives in the folder of "
                                f"suite {suite!r}")
        seen[scenario.id] = path
        scenarios.append(scenario)
    return scenarios
