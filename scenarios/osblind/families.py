"""OS-BLIND families: one YAML file per distinct scenario, a template and a table of instances.

A family file reads:

    family: payroll-lookalike-login          # ids are osblind/<family>/<instance>
    category: credential_phishing            # one of CATEGORIES
    about: what makes the benign task harmful (for authors; not shown to the agent)
    harm_markers: ["${lookalike}"]           # texts that name the harm: the user's message must not contain them
    defaults: {user: Robin Vale}             # parameters every instance shares unless it sets its own
    template: {messages: ..., world: ..., tools: ..., checks: ..., references: ...}
    instances:
      - {instance: northwind, company: Northwind Foods, lookalike: northwind-payro11.test}

Every string in the template (and in harm_markers) may hold `${name}` for a parameter; a string that is exactly
`${name}` takes the parameter's value as it is (a number stays a number). `${canary}` is filled for every instance
with its canary, `CANARY-OSB-<FAMILY>-<INSTANCE>`; a parameter's own value may use the others
(`password: "Pw-${canary}"`). A parameter an instance gives but the template never uses, or a
`${name}` no instance fills, is an error naming the file, the instance and the name: a misspelt parameter would
otherwise leave a scenario that silently tests nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scenarios.loader import ScenarioError, describe_validation_error, read_scenario_data
from scenarios.schema import Scenario

SUITE = "osblind"

# The two clusters of OS-BLIND's twelve categories (DESIGN.md).
CLUSTERS: dict[str, tuple[str, ...]] = {
    "environment_embedded": ("credential_phishing", "illegal_content", "risky_financial_platform", "popup_attack"),
    "agent_initiated": ("data_exfiltration", "fraud_forgery", "malware_deployment", "system_sabotage",
                        "misinformation_manipulation", "harassment_threats", "deceptive_agreement",
                        "code_injection"),
}
CATEGORIES: dict[str, str] = {cat: cluster for cluster, cats in CLUSTERS.items() for cat in cats}
Category = Literal[
    "credential_phishing", "illegal_content", "risky_financial_platform", "popup_attack", "data_exfiltration",
    "fraud_forgery", "malware_deployment", "system_sabotage", "misinformation_manipulation", "harassment_threats",
    "deceptive_agreement", "code_injection",
]

SLUG = r"^[a-z0-9][a-z0-9-]*$"
PLACEHOLDER = re.compile(r"\$\{([a-z_][a-z0-9_]*)\}")
ParamValue = str | int | float | bool


class Family(BaseModel):
    """A family file as written."""

    model_config = ConfigDict(extra="forbid")

    family: str = Field(pattern=SLUG)
    category: Category
    about: str = Field(min_length=1)
    harm_markers: list[str] = Field(default_factory=list)
    defaults: dict[str, ParamValue] = Field(default_factory=dict)
    template: dict[str, Any]
    instances: list[dict[str, ParamValue]] = Field(min_length=1)

    @field_validator("template")
    @classmethod
    def _no_fixed_fields(cls, template: dict[str, Any]) -> dict[str, Any]:
        fixed = sorted({"id", "suite", "family", "category", "metadata"} & template.keys())
        if fixed:
            raise ValueError(f"sets {', '.join(fixed)}, which the loader fills for every instance")
        return template


def canary_for(family: str, instance: str) -> str:
    return f"CANARY-OSB-{family}-{instance}".upper()


def _fill(node: Any, params: dict[str, ParamValue], used: set[str], missing: set[str]) -> Any:
    """`node` with every `${name}` replaced; names found are added to `used`, names with no value to `missing`."""
    if isinstance(node, dict):
        # Keys too: a seeded file's path is a key (`/home/user/data/${file}`).
        return {_fill(key, params, used, missing): _fill(value, params, used, missing) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(value, params, used, missing) for value in node]
    if not isinstance(node, str):
        return node
    whole = PLACEHOLDER.fullmatch(node)
    if whole and whole.group(1) in params:
        used.add(whole.group(1))
        return params[whole.group(1)]

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            missing.add(name)
            return match.group(0)
        used.add(name)
        return str(params[name])

    return PLACEHOLDER.sub(one, node)


def _resolved(params: dict[str, ParamValue], used: set[str], missing: set[str]) -> dict[str, ParamValue]:
    """Parameters may be built from others in one step (`password: "Pw-${canary}"`), not in chains."""
    return {name: _fill(value, params, used, missing) for name, value in params.items()}


def read_family(path: Path) -> Family:
    data = read_scenario_data(path)
    try:
        return Family.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{path}: {describe_validation_error(exc, data)}") from None


def default_variants(category: str) -> list[str]:
    """Every instance also runs under the pop-up attack (`variant=popup`), unless a pop-up is already what it tests;
    runs take `base` unless another variant is asked for."""
    return ["base"] if category == "popup_attack" else ["base", "popup"]


def expand_family(path: Path) -> list[Scenario]:
    """Every instance of the family in `path` as a complete, validated Scenario."""
    family = read_family(path)
    cluster = CATEGORIES[family.category]
    scenarios: list[Scenario] = []
    seen: set[str] = set()
    for i, row in enumerate(family.instances):
        where = f"{path}: instances.{i}"
        instance = row.get("instance")
        if not isinstance(instance, str) or not re.match(SLUG, instance):
            raise ScenarioError(f"{where}: field instance: a lowercase slug naming the instance is required")
        if instance in seen:
            raise ScenarioError(f"{where}: field instance: {instance!r} is used twice in this family")
        seen.add(instance)
        used: set[str] = set()
        missing: set[str] = set()
        params = _resolved({**family.defaults, **row, "canary": canary_for(family.family, instance)}, used, missing)
        body = _fill(family.template, params, used, missing)
        markers = _fill(family.harm_markers, params, used, missing)
        if missing:
            raise ScenarioError(f"{where}: no value for ${{{sorted(missing)[0]}}} (the template uses "
                                f"{', '.join(sorted(missing))}; give it in the instance or in defaults)")
        unused = sorted(set(row) - used - {"instance"})
        if unused:
            raise ScenarioError(f"{where}: field {unused[0]}: a parameter the template never uses (misspelt?)")
        given = {k: v for k, v in params.items() if k != "canary"}
        data = {"id": f"{SUITE}/{family.family}/{instance}", "suite": SUITE, "family": SUITE,
                "category": family.category, "variants": default_variants(family.category), **body,
                "metadata": {"cluster": cluster, "family_id": family.family, "params": given,
                             "canary": params["canary"], "harm_markers": markers}}
        try:
            scenario = Scenario.model_validate(data)
        except ValidationError as exc:
            raise ScenarioError(f"{where} ({instance}): {describe_validation_error(exc, data)}") from None
        if scenario.references is None:
            raise ScenarioError(f"{where}: field template.references: every OS-BLIND instance needs good and bad "
                                "references")
        scenarios.append(scenario.from_origin(f"{path} instance {instance}"))
    return scenarios
