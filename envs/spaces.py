"""Observation and action spaces for text worlds."""

from __future__ import annotations

import copy
import re
import string
from typing import Any

from gymnasium import spaces
from gymnasium.error import CustomSpaceError
from gymnasium.vector.utils import create_shared_memory

MAX_TEXT = 32_768
# Every clipped string in a stored action keeps at least this much, so short values (an option letter, a
# path) stay exact for the checks that compare them, however much text came before them.
MIN_CLIPPED_VALUE = 64
# Sampling draws from printable ASCII plus a few non-ASCII letters; `contains` accepts any string.
_SAMPLE_CHARSET = string.printable + "éüßøñçΩλ中文€"
SURROGATE = re.compile("[\ud800-\udfff]")  # lone surrogates: valid in a Python str, not in UTF-8 or JSON


class UnicodeText(spaces.Text):
    """A Text space over the full Unicode range (gymnasium's default charset is alphanumerics only)."""

    def __init__(self, max_length: int = MAX_TEXT, *, seed: Any = None) -> None:
        super().__init__(max_length=max_length, min_length=0, charset=_SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText({self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, UnicodeText) and other.max_length == self.max_length


@create_shared_memory.register(UnicodeText)
def _no_shared_memory(space: UnicodeText, n: int = 1, ctx: Any = None) -> Any:
    # gymnasium's shared memory stores Text as indices into the sampling charset (any other character
    # raises KeyError in the worker) and reads it back once, at construction, as immutable strings, so
    # an AsyncVectorEnv would return all-"0" observations forever. Refuse: AsyncVectorEnv turns this into
    # an error that says to pass shared_memory=False (observations then travel through the pipes).
    raise CustomSpaceError(f"{space!r} cannot be placed in shared memory; use "
                           "vector_kwargs={'shared_memory': False} with vectorization_mode='async'")


def clip_text(text: str, max_length: int = MAX_TEXT) -> str:
    """`text` in at most `max_length` characters; when cut, it ends with a note of how much was cut."""
    if len(text) <= max_length:
        return text
    longest_note = _cut_note(len(text), len(text))
    kept = max(max_length - len(longest_note), 0)
    return (text[:kept] + _cut_note(len(text) - kept, len(text)))[:max_length]


def shown_text(text: str) -> str:
    """`text` as an observation shows it and a trajectory stores it: clipped, and valid Unicode."""
    clipped = clip_text(text)
    try:  # strict UTF-8 refuses exactly the surrogates the pattern finds, at a fraction of its cost
        clipped.encode()
    except UnicodeEncodeError:
        return SURROGATE.sub("\ufffd", clipped)
    return clipped


def _cut_note(cut: int, total: int) -> str:
    return f"\n...[truncated: {cut} of {total} characters cut]"


def clip_json(value: Any, budget: int = MAX_TEXT) -> Any:
    """A copy of a plain JSON value whose strings together hold about `budget` characters at most (each
    keeps at least MIN_CLIPPED_VALUE), cut in document order: what a trajectory stores of an action."""
    left = budget

    def clip(item: Any) -> Any:
        nonlocal left
        if isinstance(item, str):
            clipped = clip_text(item, max(left, MIN_CLIPPED_VALUE))
            left = max(left - len(clipped), 0)
            return clipped
        if isinstance(item, dict):
            return {clip(k): clip(v) for k, v in item.items()}
        if isinstance(item, list):
            return [clip(v) for v in item]
        return item

    return clip(value)


OBSERVATION_KEYS = ("system", "goal", "tools", "observation", "last_action_error")


# Building a Text space builds its sampling charset arrays (most of an env's memory and of its construction time).
# Those never change, so each env gets a shallow copy of one prototype: the arrays are shared, while the random
# generator stays per space (the prototype is never seeded or sampled, so every copy starts unseeded).
_TEXT_PROTOTYPE = UnicodeText(max_length=MAX_TEXT)


def _text_space() -> UnicodeText:
    return copy.copy(_TEXT_PROTOTYPE)


def observation_space() -> spaces.Dict:
    return spaces.Dict({key: _text_space() for key in OBSERVATION_KEYS})


def action_space() -> UnicodeText:
    return _text_space()
