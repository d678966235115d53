"""A quick yes to "is this freshly decoded JSON already within an action's bounds?", so the env need not copy it.

envs.actions copies whatever an agent sends into plain values while checking its bounds (values, depth, characters,
lone surrogates, integer size, finite numbers), naming the path of the first thing out of bounds. Most actions are
small JSON texts whose decoded tree is already plain and fresh: `fits` checks the same bounds without copying or
building paths, and answers False for anything it is not sure of, so the caller falls back to the full check (and
its error message). Tests compare the two over many trees.
"""

from __future__ import annotations

import math
import re
from typing import Any

SURROGATE = re.compile("[\ud800-\udfff]")


def fits(tree: Any, *, max_items: int, max_depth: int, max_chars: int, int_bits: int) -> bool:
    """True only if `tree` holds nothing but dict (str keys), list, str, int, float, bool and None, within the bounds
    (keys count as values and as characters; a container at depth `max_depth` is too deep)."""
    items = chars = 0
    pending: list[tuple[Any, int]] = [(tree, 0)]
    while pending:
        value, depth = pending.pop()
        items += 1
        kind = type(value)
        if kind is str:
            chars += len(value)
            if SURROGATE.search(value):
                return False
        elif kind is dict:
            if depth >= max_depth or items + 2 * len(value) > max_items:
                return False
            items += len(value)
            for key, child in value.items():
                if type(key) is not str or SURROGATE.search(key):
                    return False
                chars += len(key)
                pending.append((child, depth + 1))
        elif kind is list:
            if depth >= max_depth or items + len(value) > max_items:
                return False
            pending.extend((child, depth + 1) for child in value)
        elif kind is int:
            if value.bit_length() >= int_bits:
                return False
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif value is not None and kind is not bool:
            return False
        if items > max_items or chars > max_chars:
            return False
    return True
