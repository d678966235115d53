"""Reading a YAML data file at a bounded cost.

A YAML alias repeats a whole subtree by reference: ten aliases of ten aliases of ... make a file of a few
hundred bytes that expands to billions of nodes once anything walks it (validation, hashing). So before
building any objects we walk the parser's event stream once, counting what the document expands to
(every alias adds the full size of its anchor) and how deep it nests, and stop at the first bound crossed.
The depth bound also protects the C composer, which recurses once per nesting level.
Duplicate mapping keys, which YAML silently resolves to the last one, are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import ScalarNode

MAX_FILE_BYTES = 1024 * 1024  # the shipped scenario files are under 10 KiB
MAX_NODES = 100_000  # after expanding aliases; a shipped file has a few hundred
MAX_TEXT_CHARS = 2 * MAX_FILE_BYTES  # scalar text after expanding aliases
MAX_DEPTH = 64  # nesting levels after expanding aliases; shipped files nest fewer than 10

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where it is installed
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlLimitError(ValueError):
    """The document is malformed or would cost more than the bounds allow; the message says where."""


@dataclass
class _Open:
    """A collection whose end event has not come yet."""

    anchor: str | None
    nodes_before: int
    chars_before: int
    depth: int
    reached: int


class _Cost:
    def __init__(self) -> None:
        self.nodes = 0
        self.chars = 0
        self.open: list[_Open] = []
        self.anchors: dict[str, tuple[int, int, int]] = {}  # name -> (nodes, chars, height)

    def add(self, nodes: int, chars: int, height: int, line: int) -> None:
        self.nodes += nodes
        self.chars += chars
        reached = len(self.open) + height
        if self.open:
            self.open[-1].reached = max(self.open[-1].reached, reached)
        if self.nodes > MAX_NODES:
            raise YamlLimitError(f"line {line}: the document expands to more than {MAX_NODES:,} nodes "
                                 "(YAML aliases repeat whole subtrees)")
        if self.chars > MAX_TEXT_CHARS:
            raise YamlLimitError(f"line {line}: the document expands to more than {MAX_TEXT_CHARS:,} characters "
                                 "of text (YAML aliases repeat whole subtrees)")
        if reached > MAX_DEPTH:
            raise YamlLimitError(f"line {line}: nested more than {MAX_DEPTH} levels deep")


def check_cost(text: str) -> None:
    """Raise YamlLimitError (or yaml.YAMLError for bad syntax) if `text` expands past the bounds."""
    cost = _Cost()
    for event in yaml.parse(text, Loader=_BaseLoader):
        line = event.start_mark.line + 1
        if isinstance(event, (MappingStartEvent, SequenceStartEvent)):
            cost.add(1, 0, 0, line)
            cost.open.append(_Open(event.anchor, cost.nodes - 1, cost.chars, len(cost.open), len(cost.open)))
        elif isinstance(event, (MappingEndEvent, SequenceEndEvent)):
            done = cost.open.pop()
            if cost.open:
                cost.open[-1].reached = max(cost.open[-1].reached, done.reached)
            if done.anchor is not None:
                cost.anchors[done.anchor] = (cost.nodes - done.nodes_before, cost.chars - done.chars_before,
                                             done.reached - done.depth)
        elif isinstance(event, ScalarEvent):
            cost.add(1, len(event.value), 0, line)
            if event.anchor is not None:
                cost.anchors[event.anchor] = (1, len(event.value), 0)
        elif isinstance(event, AliasEvent):
            if event.anchor not in cost.anchors:
                raise YamlLimitError(f"line {line}: alias *{event.anchor} refers to no complete anchor before it")
            cost.add(*cost.anchors[event.anchor], line)


class _NoDuplicateKeysLoader(_BaseLoader):  # type: ignore[valid-type, misc]
    def construct_object(self, node, deep=False):  # type: ignore[no-untyped-def]
        """A value YAML's rules cannot turn into Python (e.g. a 5,000-digit int, the date 2026-13-45) is a YAML
        error at its line, not a bare ValueError."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(None, None, f"cannot read this {node.tag.rsplit(':', 1)[-1]} "
                                                    f"value: {exc}", node.start_mark) from None

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE_TAG:
                if key_node.value in first_line:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r} (first given on line "
                                    f"{first_line[key_node.value]})", key_node.start_mark)
                first_line[key_node.value] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def load_bounded(text: str) -> object:
    """Parse one YAML document within the bounds above. Raises YamlLimitError or yaml.YAMLError."""
    check_cost(text)
    return yaml.load(text, Loader=_NoDuplicateKeysLoader)  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """A YAML syntax error on one line: where, then what."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = "; ".join(part for part in (exc.context, exc.problem) if part)
        return f"line {mark.line + 1}, column {mark.column + 1}: {what}"
    return " ".join(str(exc).split())
