"""Observation and action spaces for text worlds."""

from __future__ import annotations

import string
from typing import Any

from gymnasium import spaces
from gymnasium.error import CustomSpaceError
from gymnasium.vector.utils import create_shared_memory

MAX_TEXT = 32_768
TRUNCATION_MARK = "\n...[truncated]"
# Sampling draws from printable ASCII plus a few non-ASCII letters; `contains` accepts any string.
_SAMPLE_CHARSET = string.printable + "éüßøñçΩλ中文€"


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
    if len(text) <= max_length:
        return text
    return text[: max_length - len(TRUNCATION_MARK)] + TRUNCATION_MARK


OBSERVATION_KEYS = ("system", "goal", "tools", "observation", "last_action_error")


def observation_space() -> spaces.Dict:
    return spaces.Dict({key: UnicodeText() for key in OBSERVATION_KEYS})


def action_space() -> UnicodeText:
    return UnicodeText(max_length=MAX_TEXT)
