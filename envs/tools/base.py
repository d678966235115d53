"""Tools: typed functions over the world or one of its apps. Each declares its argument model, its app and
whether it needs a shell; the tools a world offers are looked up per world (`world_tools`) and turned into JSON
schemas for agents."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from pydantic import BaseModel, ValidationError

from envs.plugins import PluginError, Registry, instance_of
from envs.world import APPS, World, app_named
from envs.world.validation_messages import describe_problems


class ToolError(Exception):
    """A tool call the world rejects (bad letter, already decided, ...): shown to the agent as an error."""


@dataclass(frozen=True)
class ToolResult:
    """What a tool call gives back: the text the agent reads, and whether the call ends the episode. A dataclass, not
    a model: every step makes one, and its two fields are checked here at a fraction of a model's cost."""

    output: str
    ends_episode: bool = False

    def __post_init__(self) -> None:
        if type(self.output) is not str and isinstance(self.output, str):  # a str subclass: kept as plain text
            object.__setattr__(self, "output", str.__str__(self.output))
        if type(self.output) is not str or type(self.ends_episode) is not bool:
            raise TypeError(f"ToolResult takes output: str and ends_episode: bool, got {type(self.output).__name__} "
                            f"and {type(self.ends_episode).__name__}")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]

    def as_openai(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


@dataclass(frozen=True)
class Tool:
    """A tool acts on a target: the world for a tool with no app (refuse, finish), else the surface of its app in
    this episode (the app's state, or what a backend supplies in its place, e.g. a sandbox's files)."""

    name: str
    description: str
    args_model: type[BaseModel]
    fn: Callable[[Any, Any], ToolResult]
    app: str | None = None  # the world app the tool acts on; None = the world itself, always available
    needs_shell: bool = False  # only shell backends (local, docker) can serve it
    refine_schema: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
    # What the refined schema depends on, as a hashable value of the target (the console's number of options); with
    # it, each refined schema's text is made once per value instead of being checked against the last one.
    refine_key: Callable[[Any], Hashable] | None = None

    def spec(self, target: Any) -> ToolSpec:
        # Each call gets its own copy: refine_schema and callers may edit it, the cached one stays as built. Parsing
        # the cached JSON text is that copy at a fifth of deepcopy's cost.
        schema = json.loads(_args_schema(self.args_model))
        if self.refine_schema is not None:
            schema = self.refine_schema(target, schema)
        return ToolSpec(self.name, self.description, schema)

    def spec_text(self, target: Any) -> str:
        """`json.dumps(self.spec(target).as_openai(), ensure_ascii=False)`, the text an observation lists tools by.
        Every episode shows it: kept per tool, and where refine_schema makes the schema per episode, reused while the
        refined schema pickles to the same bytes (the same types, values and key order, so the same JSON)."""
        if self.refine_schema is not None and self.refine_key is not None:
            return self._keyed_spec_text(target)
        kept = _SPEC_TEXTS.get(id(self))
        if kept is not None and kept[0] is not self:
            kept = None
        if self.refine_schema is None and kept is not None:
            return kept[1]
        spec = self.spec(target)
        key = None
        if self.refine_schema is not None:
            try:
                key = pickle.dumps(spec.parameters, protocol=5)
            except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
                key = None  # not picklable: dumped every time
            if key is not None and kept is not None and kept[2] == key:
                return kept[1]
        text = _ENCODER.encode(spec.as_openai())
        if len(_SPEC_TEXTS) >= _MAX_SPEC_TEXTS:
            _SPEC_TEXTS.clear()
        _SPEC_TEXTS[id(self)] = (self, text, key)  # the tool is kept with its text, so its id is never reused meanwhile
        return text

    def _keyed_spec_text(self, target: Any) -> str:
        key = (id(self), self.refine_key(target))
        kept = _KEYED_SPEC_TEXTS.get(key)
        if kept is not None and kept[0] is self:
            return kept[1]
        text = _ENCODER.encode(self.spec(target).as_openai())
        if len(_KEYED_SPEC_TEXTS) >= _MAX_SPEC_TEXTS:
            _KEYED_SPEC_TEXTS.clear()
        _KEYED_SPEC_TEXTS[key] = (self, text)  # kept with its tool, so the tool's id is not reused meanwhile
        return text

    def invoke(self, target: Any, args: dict[str, Any]) -> ToolResult:
        try:
            parsed = self.args_model.model_validate(args)
        except ValidationError as exc:
            raise ToolError(f"bad arguments for {self.name}: {describe_problems(exc, 'arguments')}") from None
        return self.fn(target, parsed)


# An argument model's JSON schema never changes, and pydantic rebuilds it on every model_json_schema() call (about
# 30x a copy): built once per model class, kept as JSON text. Weak keys: a class defined and dropped (tests) is not
# kept alive.
_SCHEMAS: WeakKeyDictionary[type[BaseModel], str] = WeakKeyDictionary()


# id(tool) -> (tool, its spec text, the pickled refined schema it was made from or None); bounded for processes that
# make tools (tests). One encoder for all: json.dumps with an option builds a new one each call.
_SPEC_TEXTS: dict[int, tuple[Tool, str, bytes | None]] = {}
_MAX_SPEC_TEXTS = 4096
# (id(tool), its refine_key of the target) -> (tool, spec text), for tools that declare what their schema depends on.
_KEYED_SPEC_TEXTS: dict[tuple[int, Hashable], tuple[Tool, str]] = {}
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def _args_schema(model: type[BaseModel]) -> str:
    schema = _SCHEMAS.get(model)
    if schema is None:
        built = model.model_json_schema()
        built.pop("title", None)
        schema = _SCHEMAS[model] = json.dumps(built)
    return schema


# Found through the entry-point group `safety_sandbox.tool`: tools that belong to no app (the agent's own actions) or
# that a plugin adds over an existing app. An app's own tools come with the app (envs.world.app).
TOOLS: Registry[Tool] = Registry("tool", instance_of(Tool))
# A tool name two apps of one world share is offered as `<app>__<name>` (OpenAI's tool names allow no dot).
QUALIFIER = "__"


def register_tool(tool: Tool) -> Tool:
    """Register a tool in this process only (tests); installed packages declare an entry point instead."""
    return TOOLS.add(tool.name, tool)


def tool(*, name: str, args: type[BaseModel], app: str | None = None, needs_shell: bool = False,
         refine_schema: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None,
         refine_key: Callable[[Any], Hashable] | None = None
         ) -> Callable[[Callable[[Any, Any], ToolResult | str]], Tool]:
    """Decorator: make `fn(target, args) -> ToolResult | str` a Tool (its docstring describes it). The target is the
    world when `app` is None, else that app's surface. An app lists the result in its `tools`; a tool that belongs
    to no app is named by an entry point in `safety_sandbox.tool`."""

    def wrap(fn: Callable[[Any, Any], ToolResult | str]) -> Tool:
        def run(target: Any, parsed: Any) -> ToolResult:
            result = fn(target, parsed)
            return result if isinstance(result, ToolResult) else ToolResult(output=result)

        return Tool(name=name, description=(fn.__doc__ or "").strip(), args_model=args, fn=run,
                    app=app, needs_shell=needs_shell, refine_schema=refine_schema,
                    refine_key=refine_key)

    return wrap


def _tool(name: str) -> Tool:
    found = TOOLS.get(name)
    if found.name != name:  # agents call a tool by its own name: the entry point must use the same one
        raise PluginError(f"tool {name!r} is a Tool named {found.name!r}; the entry point and the tool must use "
                          "one name")
    return found


def registered_tools() -> Mapping[str, Tool]:
    """Every tool of the group `safety_sandbox.tool` by name, read-only (apps' own tools are in `world_tools`)."""
    return MappingProxyType({name: _tool(name) for name in TOOLS.names()})


def _app_tools(app_name: str) -> list[Tool]:
    app = app_named(app_name)
    tools = list(app.tools)
    for t in tools:
        if not isinstance(t, Tool) or t.app != app_name:
            raise PluginError(f"app {app_name!r} lists {t!r} among its tools; each must be an envs.tools.Tool made "
                              f"with app={app_name!r}")
    return tools


Offers = tuple[dict[str, Tool], dict[str, list[Tool]]]
# What a world offers depends only on the apps it hosts and on what is registered: worked out once per set of hosted
# apps and registry revision (the 2,440 worlds of the official set host one app set), not per world or per episode.
# Callers only read the cached dicts; the public functions hand out copies.
_OFFERS: dict[tuple[object, ...], Offers] = {}
_ELSEWHERE: dict[tuple[object, ...], dict[str, list[Tool]]] = {}
_NAMEABLE: dict[tuple[object, ...], NameableTools] = {}
MAX_CACHED_APP_SETS = 256


def _revision() -> tuple[object, ...]:
    return TOOLS.revision(), APPS.revision()


def _offers(world: World) -> Offers:
    """The tools `world` offers by the name the agent calls them, and each name its hosted apps share."""
    return _offers_for(frozenset(world.apps()))


_V = TypeVar("_V")


def _kept(cache: dict[tuple[object, ...], _V], key: tuple[object, ...], make: Callable[[], _V]) -> _V:
    """`cache[key]`, made on first use; the cache is emptied when it holds MAX_CACHED_APP_SETS (bounded memory)."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= MAX_CACHED_APP_SETS:
            cache.clear()
        found = cache[key] = make()
    return found


def _offers_for(hosted: frozenset[str]) -> Offers:
    return _kept(_OFFERS, (hosted, _revision()), lambda: _work_out_offers(hosted))


def _work_out_offers(hosted: frozenset[str]) -> Offers:
    offered = {name: t for name, t in registered_tools().items() if t.app is None or t.app in hosted}
    by_name: dict[str, list[Tool]] = {}
    for app_name in sorted(hosted):
        for t in _app_tools(app_name):
            by_name.setdefault(t.name, []).append(t)
    shared = {name: tools for name, tools in by_name.items() if len(tools) > 1 or name in offered}
    for name, tools in by_name.items():
        for t in tools:
            offered_as = f"{t.app}{QUALIFIER}{name}" if name in shared else name
            if offered_as in offered:  # e.g. a registered tool named like another app's qualified one
                raise PluginError(f"tool {offered_as!r} of app {t.app!r} clashes with the registered tool "
                                  f"{offered_as!r}; rename one of them")
            offered[offered_as] = replace(t, name=offered_as) if name in shared else t
    return dict(sorted(offered.items())), shared


def world_tools(world: World) -> dict[str, Tool]:
    """Every tool `world` offers, by name: the registered tools that need no app or an app it hosts, and the tools of
    each app it hosts. An app's tool keeps its name unless a registered tool or another hosted app has that name
    too; then each app's tool of that name is `<app>__<name>` (e.g. mail__search and web__search)."""
    return dict(_offers(world)[0])


def nameable_tools(worlds: Iterable[World]) -> Mapping[str, Tool]:
    """Every name a scenario over `worlds` may give a tool, with the tool: each name the worlds offer, and, so that a
    tool of an app they lack is reported as such, every other tool whose name no two installed parts share.
    Read-only; the other parts' names (which import every installed app) are worked out only when asked for."""
    app_sets = tuple(dict.fromkeys(frozenset(world.apps()) for world in worlds))  # in order: the first world wins
    return _kept(_NAMEABLE, (app_sets, _revision()), lambda: NameableTools(app_sets))


class NameableTools(Mapping[str, Tool]):
    """nameable_tools' answer. A scenario that names only tools its worlds offer (most do) never needs the rest, so
    a run over one suite does not import the apps of every other suite."""

    def __init__(self, app_sets: tuple[frozenset[str], ...]) -> None:
        self._offered: dict[str, Tool] = {}
        self._hosted: set[str] = set()
        for apps in app_sets:
            self._hosted |= apps
            for name, t in _offers_for(apps)[0].items():
                self._offered.setdefault(name, t)
        self._all: dict[str, Tool] | None = None

    def _everything(self) -> dict[str, Tool]:
        if self._all is None:
            named = dict(self._offered)
            for name, tools in _every_tool_by_name().items():
                if name not in named and len(tools) == 1 and tools[0].app not in self._hosted:
                    named[name] = tools[0]
            self._all = named
        return self._all

    def __getitem__(self, name: str) -> Tool:
        found = self._offered.get(name)
        return found if found is not None else self._everything()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._offered or name in self._everything()

    def __iter__(self) -> Iterator[str]:
        return iter(self._everything())

    def __len__(self) -> int:
        return len(self._everything())


def _every_tool_by_name() -> dict[str, list[Tool]]:
    """Every registered tool and every app's tool, plain and qualified, by name (once per registry revision)."""
    key = _revision()
    found = _ELSEWHERE.get(key)
    if found is not None:
        return found
    by_name: dict[str, list[Tool]] = {}
    for name, t in registered_tools().items():
        by_name.setdefault(name, []).append(t)
    for app in APPS.names():
        for t in _app_tools(app):
            by_name.setdefault(t.name, []).append(t)
            by_name.setdefault(f"{app}{QUALIFIER}{t.name}", []).append(replace(t, name=f"{app}{QUALIFIER}{t.name}"))
    _ELSEWHERE.clear()  # only the current revision is ever asked for again
    _ELSEWHERE[key] = by_name
    return by_name


def tool_name_problem(name: str, worlds: Iterable[World]) -> str:
    """Why `name` is no tool of any of `worlds`: a name their apps share (say which to write), or unknown."""
    known: set[str] = set()
    for world in worlds:
        offered, shared = _offers(world)
        if name in shared:
            choices = " or ".join(f"{t.app}{QUALIFIER}{name}" for t in shared[name])
            return f"tool {name!r} is offered by several apps of the world; name one: {choices}"
        known |= offered.keys()
    return f"unknown tool {name!r} (known: {', '.join(sorted(known))})"


def every_tool_name() -> set[str]:
    """Every name a tool may go by in some world: registered tools, and each app's tools, plain and qualified."""
    names = set(TOOLS.names())
    for app in APPS.names():
        names |= {n for t in _app_tools(app) for n in (t.name, f"{app}{QUALIFIER}{t.name}")}
    return names


def tools_for(world: World, allowed: list[str] | None, shell: bool = False) -> list[Tool]:
    """The tools an episode offers: those of `world_tools` (only where there is a shell if they need one), narrowed
    to `allowed` if given. A name the world's apps share, or that no part knows, is an error; a known tool of an
    app this world lacks is left out (scenario validation reports it when the file is loaded)."""
    offered, shared = _offers(world)
    names = allowed if allowed is not None else list(offered)
    missing = [n for n in names if n not in offered]
    if missing:
        known = every_tool_name()
        problems = [tool_name_problem(n, [world]) for n in missing if n in shared or n not in known]
        if problems:
            raise ValueError("; ".join(problems))
    return [offered[n] for n in names if n in offered and (shell or not offered[n].needs_shell)]


def tool_target(tool: Tool, world: World, surfaces: Mapping[str, object]) -> object:
    """What `tool` acts on in this episode: the world, a surface a backend supplies for its app, or the app's own."""
    if tool.app is None:
        return world
    if tool.app in surfaces:
        return surfaces[tool.app]
    state = world.app_states().get(tool.app)
    if state is None:
        raise ToolError(f"this world has no {tool.app} app")
    return app_named(tool.app).surface(state)
