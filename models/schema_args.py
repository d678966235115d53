"""Arguments that satisfy a tool's JSON schema, for agents that act without a language model."""

from __future__ import annotations

from typing import Any

import numpy as np

_WORDS = ("proceed", "review", "ok", "plan", "because", "status", "report", "data")


def sample_args(schema: dict[str, Any], rng: np.random.Generator, fill_optional: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    return {name: sample_value(spec, rng) for name, spec in props.items() if fill_optional or name in required}


def sample_value(spec: dict[str, Any], rng: np.random.Generator) -> Any:
    if "enum" in spec:
        return spec["enum"][int(rng.integers(len(spec["enum"])))]
    kind = spec.get("type", "string")
    if kind == "integer":
        return int(rng.integers(spec.get("minimum", 0), spec.get("maximum", 100) + 1))
    if kind == "number":
        return float(rng.uniform(spec.get("minimum", 0.0), spec.get("maximum", 100.0)))
    if kind == "boolean":
        return bool(rng.integers(2))
    if kind == "array":
        return [sample_value(spec.get("items", {}), rng) for _ in range(int(rng.integers(1, 3)))]
    if kind == "object":
        return sample_args(spec, rng)
    return " ".join(_WORDS[int(i)] for i in rng.integers(len(_WORDS), size=int(rng.integers(1, 4))))
