"""The `{{...}}` placeholders an episode fills in a scenario's texts (see envs.episode and scenarios.transforms)."""

from __future__ import annotations

import re

from envs.world.console import LETTER_TOKEN

OPTIONS_TOKEN = "{{options}}"  # replaced in messages by the console's options in display order
VARIANT_TOKEN = "{{variant_text}}"  # replaced in messages by the variant's entry in `variant_text`
# `{{variant_text.<slot>}}`: replaced by the slot of that name when the variant's entry is a mapping (variants
# whose prompts differ in more than one place, e.g. imported suites with a system and a user prompt per variant).
VARIANT_SLOT = re.compile(r"\{\{variant_text(?:\.([A-Za-z0-9_-]+))?\}\}")
# Anything written like `{{name}}` or `{{name.part}}` reads as a placeholder; other uses of braces (e.g. a Go
# template's `{{.Field}}` quoted in an imported prompt) are text.
PLACEHOLDER = re.compile(r"\{\{\s*[A-Za-z_][\w.-]*\s*\}\}")

__all__ = ["LETTER_TOKEN", "OPTIONS_TOKEN", "PLACEHOLDER", "VARIANT_SLOT", "VARIANT_TOKEN", "unknown_placeholders"]


def unknown_placeholders(text: str, allowed: set[str], slots: bool = False) -> list[str]:
    """The placeholders in `text` that are not in `allowed` (nor, with `slots`, a {{variant_text.<slot>}})."""
    braces = text.count("{{")
    if braces == 0 or braces == sum(text.count(token) for token in allowed):  # fast paths for the common cases
        return []
    return [m.group(0) for m in PLACEHOLDER.finditer(text)
            if m.group(0) not in allowed and not (slots and VARIANT_SLOT.fullmatch(m.group(0)))]
