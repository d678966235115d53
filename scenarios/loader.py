"""Read scenario data files; a malformed file is an error that names the file and the field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from scenarios.schema import Scenario

SCENARIO_ROOT = Path(__file__).parent


class ScenarioError(ValueError):
    """A scenario file or selection is wrong; the message says what and where."""


def load_scenario_file(path: Path) -> Scenario:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario file must hold a mapping, got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: invalid scenario ({exc.error_count()} problem(s))"]
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "<root>"
            lines.append(f"  field {field}: {err['msg']}")
        raise ScenarioError("\n".join(lines)) from None


def load_suite_dir(directory: Path) -> list[Scenario]:
    """A shipped suite (written by us): unlike imported ones, every scenario must carry good and bad reference
    trajectories, so `python -m scenarios.check` can prove its labels."""
    scenarios = [load_scenario_file(p) for p in sorted(directory.glob("*.yaml"))]
    seen: dict[str, Path] = {}
    for scenario, path in zip(scenarios, sorted(directory.glob("*.yaml")), strict=True):
        if scenario.references is None:
            raise ScenarioError(f"{path}: field references: a shipped scenario needs good and bad reference "
                                "trajectories (only imported suites may go without)")
        if scenario.id in seen:
            raise ScenarioError(f"{path}: duplicate scenario id {scenario.id!r} (also in {seen[scenario.id]})")
        if scenario.suite != directory.name:
            raise ScenarioError(f"{path}: field suite: is {scenario.suite!r} but the file lives in suite "
                                f"folder {directory.name!r}")
        seen[scenario.id] = path
    return scenarios


def shipped_suite_dirs() -> dict[str, Path]:
    """Suites written by us: every folder under scenarios/ that holds scenario files."""
    return {d.name: d for d in sorted(SCENARIO_ROOT.iterdir()) if d.is_dir() and any(d.glob("*.yaml"))}
