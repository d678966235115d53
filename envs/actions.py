"""Agent actions: a tool call or a final plain-text message, given as JSON text or as Python objects.

Whatever the agent sends is read defensively: text and objects are bounded in size and depth and copied
into plain JSON values before anything else looks at them, so a hostile action ends as an ActionError
the agent is shown, never as an exception out of the env.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from envs.plain_json import fits
from envs.spaces import SURROGATE, clip_json, clip_text, shown_text
from envs.world.validation_messages import describe_problems

# Bounds on what is parsed. A tool call is a handful of short arguments; the size leaves room for a bash
# command of MAX_COMMAND_BYTES however it is escaped, and for write_file contents of several MB.
MAX_ACTION_CHARS = 8 << 20  # characters of JSON text, or of all strings in an action given as objects
MAX_ACTION_DEPTH = 32  # nesting of objects and arrays
MAX_ACTION_ITEMS = 256  # values (keys included) in one action; also bounds what a trajectory stores of it
MAX_TOOL_NAME_CHARS = 128
MAX_INT_BITS = 64


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: str = Field(min_length=1, max_length=MAX_TOOL_NAME_CHARS)
    args: dict[str, Any] = Field(default_factory=dict)


class FinalMessage(BaseModel):
    """A plain-text reply that ends the episode (how chat-only models answer)."""

    model_config = ConfigDict(extra="forbid")
    message: str


Action = ToolCall | FinalMessage


class ActionError(ValueError):
    """The action could not be understood; the env reports it to the agent and the episode goes on."""


ACTION_FORMAT = ('an action is JSON: {"tool": "<name>", "args": {...}} or {"message": "<final reply>"}; '
                 'OpenAI-style {"name": ..., "arguments": ...} is accepted too')


def parse_action(raw: Any) -> Action:
    """The action `raw` stands for; ActionError, saying what is wrong, for anything else."""
    if type(raw) is str and len(raw) <= MAX_ACTION_CHARS and (call := _plain_tool_call(raw)) is not None:
        return call
    tree = _to_tree(raw)
    if not (type(raw) is str and fits(tree, max_items=MAX_ACTION_ITEMS, max_depth=MAX_ACTION_DEPTH,
                                      max_chars=MAX_ACTION_CHARS, int_bits=MAX_INT_BITS)):  # else: fresh and plain
        tree = _plain(tree, "action")
    if not isinstance(tree, dict):
        raise ActionError(f"action must be a JSON object, got {_json_type(tree)}; {ACTION_FORMAT}")
    tree = _normalise_openai_style(tree)
    try:
        if "message" in tree:
            return FinalMessage.model_validate(tree)
        return ToolCall.model_validate(tree)
    except ValidationError as exc:
        raise ActionError(f"malformed action ({describe_problems(exc, 'action')}); {ACTION_FORMAT}") from None


def _plain_tool_call(text: str) -> ToolCall | None:
    """The usual action, `{"tool": ..., "args": {...}}` as JSON text, parsed and validated in one pass (in Rust), then
    held to the same bounds; None for anything else, which the full path then reads (and explains, if it is wrong).
    Both parsers give the same values for what both accept; what only one accepts fails here or in `fits`."""
    try:
        call = ToolCall.model_validate_json(text)
    except ValidationError:
        return None
    if _flat_args_within_bounds(call.args) or fits({"tool": call.tool, "args": call.args}, max_items=MAX_ACTION_ITEMS,
                                                   max_depth=MAX_ACTION_DEPTH, max_chars=MAX_ACTION_CHARS,
                                                   int_bits=MAX_INT_BITS):
        return call
    return None


def _flat_args_within_bounds(args: dict[str, Any]) -> bool:
    """True for arguments of scalars only within the bounds, as most tool calls are (False: ask `fits`). Their
    strings need no look: pydantic's JSON parser refuses lone surrogates, and no string decoded from the text is
    longer than the text, which is within MAX_ACTION_CHARS."""
    if 5 + 2 * len(args) > MAX_ACTION_ITEMS:  # the object, its two keys and values, and each argument's key and value
        return False
    for value in args.values():
        kind = type(value)
        if kind is str or kind is bool or value is None:
            continue
        if kind is int:
            if value.bit_length() >= MAX_INT_BITS:
                return False
        elif kind is not float or not math.isfinite(value):
            return False
    return True


def describe_action(raw: Any) -> str:
    """The action as the trajectory records it: its text (or JSON), clipped and valid Unicode. Never raises."""
    if issubclass(type(raw), str):
        return shown_text(str.__str__(raw))
    if issubclass(type(raw), bytes | bytearray):
        return clip_text(bytes(raw[: MAX_ACTION_CHARS + 1]).decode("utf-8", errors="replace"))
    try:
        tree = _plain(_to_tree(raw), "action")
        return clip_text(tree if type(tree) is str else json.dumps(clip_json(tree), ensure_ascii=False))
    except ActionError as exc:
        return shown_text(f"<unreadable {_type_name(raw)} action: {exc}>")


# ---- reading raw input ----------------------------------------------------------------------------------

def _to_tree(raw: Any) -> Any:
    """Decode text and models into Python values (not yet checked)."""
    if issubclass(type(raw), BaseModel):
        try:
            return raw.model_dump()
        except Exception as exc:  # noqa: BLE001 - a hostile model_dump must not escape
            raise ActionError(f"could not read the {_type_name(raw)} action: {_describe(exc)}") from None
    if issubclass(type(raw), bytes | bytearray):
        if len(raw) > MAX_ACTION_CHARS:
            raise ActionError(f"action is {len(raw)} bytes; the limit is {MAX_ACTION_CHARS}")
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ActionError(f"action bytes are not valid UTF-8 (byte {exc.start}); {ACTION_FORMAT}") from None
    if issubclass(type(raw), str):
        return _load_json(str.__str__(raw), "action is")
    return raw


def _load_json(text: str, subject: str) -> Any:
    """JSON text as Python values; `subject` ("action is", "tool arguments are") opens the error messages."""
    if len(text) > MAX_ACTION_CHARS:
        raise ActionError(f"{subject} {len(text)} characters long; the limit is {MAX_ACTION_CHARS}")
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ActionError(f"{subject} not valid JSON ({exc.msg} at char {exc.pos}); {ACTION_FORMAT}") from None
    except RecursionError:
        raise ActionError(f"{subject} nested too deeply (the limit is {MAX_ACTION_DEPTH} levels)") from None
    except ValueError as exc:  # NaN/Infinity, or an integer with thousands of digits
        raise ActionError(f"{subject} not valid JSON ({exc}); {ACTION_FORMAT}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# One decoder for every call: json.loads with an option builds a new one each time (a tenth of a short action's parse).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _plain(value: Any, where: str) -> Any:
    """A copy of `value` made of plain JSON types only (dict with str keys, list, str, finite float, int in
    64 bits, bool, None), within the size and depth bounds. Iterative: no input can exhaust the stack."""
    budget = _Budget()
    root: list[Any] = [None]
    # Each entry: (value, its path, the container to put the copy in, the key or index there, depth).
    pending: list[tuple[Any, str, Any, Any, int]] = [(value, where, root, 0, 0)]
    while pending:
        item, path, parent, slot, depth = pending.pop()
        budget.add_item(path)
        kind = type(item)
        if issubclass(kind, dict | list | tuple) and depth >= MAX_ACTION_DEPTH:
            raise ActionError(f"{path}: nested too deeply (the limit is {MAX_ACTION_DEPTH} levels)")
        if issubclass(kind, dict):
            budget.check_room(dict.__len__(item), path)
            copy: Any = {}
            for key, child in reversed(list(dict.items(item))):
                name = _plain_key(key, path, budget)
                pending.append((child, _child_path(path, f".{name[:40]}"), copy, name, depth + 1))
        elif issubclass(kind, list | tuple):
            budget.check_room(list.__len__(item) if issubclass(kind, list) else tuple.__len__(item), path)
            elements = list(list.__iter__(item) if issubclass(kind, list) else tuple.__iter__(item))
            copy = [None] * len(elements)
            for index in reversed(range(len(elements))):
                pending.append((elements[index], _child_path(path, f"[{index}]"), copy, index, depth + 1))
        else:
            copy = _plain_scalar(item, path, budget)
        parent[slot] = copy
    return root[0]


def _child_path(path: str, step: str) -> str:
    """Where a value sits, for error messages; deep paths end in "..." rather than growing on."""
    if len(path) > 120:
        return path if path.endswith("...") else path + "..."
    return path + step


class _Budget:
    """How much of the bounds an action has used so far."""

    def __init__(self) -> None:
        self.items = 0
        self.chars = 0

    def add_item(self, path: str) -> None:
        self.items += 1
        self.check_room(0, path)

    def check_room(self, more_items: int, path: str) -> None:
        """Raise before a container's `more_items` children are even copied if they cannot all fit."""
        if self.items + more_items > MAX_ACTION_ITEMS:
            raise ActionError(f"action has more than {MAX_ACTION_ITEMS} values (at {path})")

    def add_chars(self, count: int, path: str) -> None:
        self.chars += count
        if self.chars > MAX_ACTION_CHARS:
            raise ActionError(f"action text is longer than {MAX_ACTION_CHARS} characters (at {path})")


def _plain_key(key: Any, path: str, budget: _Budget) -> str:
    if not issubclass(type(key), str):
        raise ActionError(f"{path}: object keys must be strings, got {_type_name(key)}")
    budget.add_item(path)
    return _plain_text(key, path, budget)


def _plain_text(text: str, path: str, budget: _Budget) -> str:
    text = str.__str__(text)  # a plain copy: a str subclass's overrides play no further part
    budget.add_chars(len(text), path)
    surrogate = SURROGATE.search(text)
    if surrogate:
        raise ActionError(f"{path}: text holds a lone surrogate (U+{ord(surrogate.group()):04X} at char "
                          f"{surrogate.start()}); send valid Unicode")
    return text


def _plain_scalar(value: Any, path: str, budget: _Budget) -> Any:
    kind = type(value)
    if value is None or kind is bool:
        return value
    if issubclass(kind, str):
        return _plain_text(value, path, budget)
    if issubclass(kind, int) and kind is not bool:
        number = int.__int__(value)
        if number.bit_length() >= MAX_INT_BITS:
            raise ActionError(f"{path}: integer out of range (more than {MAX_INT_BITS} bits)")
        return number
    if issubclass(kind, float):
        number = float.__float__(value)
        if not math.isfinite(number):
            raise ActionError(f"{path}: {number} is not a JSON number")
        return number
    raise ActionError(f"{path}: a value of type {_type_name(value)} is not JSON; send strings, numbers, "
                      "booleans, null, arrays and objects")


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return names.get(type(value), "null")


def _type_name(value: Any) -> str:
    try:
        return str.__str__(type(value).__name__)
    except Exception:  # noqa: BLE001 - a metaclass may make even the name hostile
        return "object"


def _describe(exc: BaseException) -> str:
    try:
        return clip_text(f"{type(exc).__name__}: {exc}", 300)
    except Exception:  # noqa: BLE001 - an exception whose __str__ raises
        return type(exc).__name__


def _normalise_openai_style(raw: dict[str, Any]) -> dict[str, Any]:
    if "function" in raw and isinstance(raw["function"], dict):
        raw = raw["function"]
    if "name" in raw and "tool" not in raw:
        args = raw.get("arguments", {})
        if isinstance(args, str):
            args = _plain(_load_json(args, "tool arguments are"), "arguments") if args.strip() else {}
        return {"tool": raw["name"], "args": args}
    return raw
