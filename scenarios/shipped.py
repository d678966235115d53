"""The project's own suite folders, declared in pyproject.toml's `safety_sandbox.suite` group as any plugin's are."""

from scenarios.loader import SCENARIO_ROOT
from scenarios.registry import SuiteFolder

managerbench = SuiteFolder(SCENARIO_ROOT / "managerbench")
kpi = SuiteFolder(SCENARIO_ROOT / "kpi")
