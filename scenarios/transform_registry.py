"""The transforms registry: the variants found through the entry-point group `safety_sandbox.transform`, each an
entry point naming a function Scenario -> Scenario. Kept apart from the transforms themselves (scenarios.transforms),
which build scenarios, so the schema's rules can list the names without importing code that imports the schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from envs.plugins import Registry, a_callable

Transform = Callable[[Any], Any]  # Scenario -> Scenario; typed loosely here, since this module is below the schema

TRANSFORMS: Registry[Transform] = Registry("transform", a_callable)


def transform(name: str) -> Callable[[Transform], Transform]:
    """Register a transform in this process only (tests); installed packages declare an entry point instead."""

    def register(fn: Transform) -> Transform:
        return TRANSFORMS.add(name, fn)

    return register


def transform_names() -> frozenset[str]:
    """The variants a transform defines (others come from a scenario's variant_text or variant_worlds)."""
    return frozenset(TRANSFORMS.names())
