"""What a scenario can be checked for before any episode runs.

Each rule here stands for a mistake that would otherwise surface only at run time (a traceback, the wrong
error kind) or never (a check that can never fire, a placeholder sent to the model verbatim). Every problem
is a line `field <path>: <what is wrong>`, the path as written in the scenario file.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from envs.apps.popup import Popup, popup_settings
from envs.backend_info import BackendInfo, backend_info, installed_backends
from envs.plugins import PluginError
from envs.tools import Tool, nameable_tools, tool_name_problem
from envs.world import World, placeholder_tokens
from envs.world.console import NO_DECISION
from envs.world.validation_messages import describe_problems
from records.checks import Check, ToolCalledCheck
from scenarios.placeholders import LETTER_TOKEN, OPTIONS_TOKEN, VARIANT_TOKEN, unknown_placeholders
from scenarios.transform_registry import transform_names


class ScenarioFields(Protocol):
    """What these rules read of a scenario: scenarios.schema.Scenario runs the rules when it is built, so it is
    named here by its shape, not imported (no schema <-> validation cycle). Read-only, so any scenario fits."""

    @property
    def world(self) -> World: ...
    @property
    def variant_worlds(self) -> Mapping[str, World]: ...
    @property
    def variants(self) -> Sequence[str]: ...
    @property
    def variant_text(self) -> Mapping[str, str | dict[str, str]]: ...
    @property
    def messages(self) -> Sequence[Any]: ...  # scenarios.schema.Message
    @property
    def tools(self) -> Sequence[str] | None: ...
    @property
    def backends(self) -> Sequence[str]: ...
    @property
    def max_steps(self) -> int: ...
    @property
    def checks(self) -> Sequence[Check]: ...
    @property
    def references(self) -> Any: ...  # scenarios.schema.References | None
    @property
    def metadata(self) -> Mapping[str, Any]: ...

# Seed bounds: a sandbox root holds 64 MB (envs.sandbox.base.SandboxLimits.disk_mb) and 20,000 files; the
# seeds may take a quarter of that, leaving the rest to the agent's work. The largest shipped or imported
# scenario seeds well under 1 MB.
MAX_SEED_FILE_BYTES = 4 * 1024 * 1024
MAX_SEED_BYTES = 16 * 1024 * 1024
MAX_SEED_FILES = 5_000
GRADED_KINDS = frozenset({"harm", "note"})  # the check kinds whose severity means something
GLOB_CHARS = re.compile(r"[*?\[]")
PATH_FIELDS = frozenset({"path", "paths"})  # how checks that read files name them


class ScenarioProblems(ValueError):
    """Every problem the scenario-wide rules found, each a `field <path>: <what>` line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class _Facts:
    """What several rules need, worked out once per scenario."""

    scenario: ScenarioFields
    worlds: list[tuple[str, World]]
    tools: Mapping[str, Tool]
    offered: set[str]


def static_problems(scenario: ScenarioFields) -> list[str]:
    every_world = worlds(scenario)
    tools = nameable_tools(w for _, w in every_world)  # names are per world: two apps may share one (envs.tools)
    facts = _Facts(scenario, every_world, tools, offered_tools(scenario, tools, every_world))
    return [*_variant_problems(scenario), *_backend_problems(facts), *_placeholder_problems(facts),
            *_tool_problems(facts),
            *_reference_problems(facts), *_check_problems(facts), *_seed_problems(facts)]


def worlds(scenario: ScenarioFields) -> list[tuple[str, World]]:
    """Every world an episode of the scenario may start from, with its field path."""
    if not scenario.variant_worlds:
        return [("world", scenario.world)]
    return [("world", scenario.world), *((f"variant_worlds.{v}", w) for v, w in scenario.variant_worlds.items())]


def _duplicates(names: Sequence[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


def _variant_problems(scenario: ScenarioFields) -> Iterator[str]:
    if repeated := _duplicates(scenario.variants):
        yield f"field variants: listed twice: {', '.join(repeated)}"
    known = transform_names()
    for i, variant in enumerate(scenario.variants):
        if variant not in known and variant not in scenario.variant_text and variant not in scenario.variant_worlds:
            yield (f"field variants.{i}: {variant!r} is neither a transform ({', '.join(sorted(known))}) nor "
                   "given in variant_text or variant_worlds")
    if "popup" in scenario.variants and scenario.world.popup is None:  # the `popup` transform reads its settings
        yield from _popup_settings_problems(scenario)


def _popup_settings_problems(scenario: ScenarioFields) -> Iterator[str]:
    try:
        settings = Popup.model_validate(popup_settings(scenario.metadata))
    except ValidationError as exc:
        yield f"field metadata.popup: {describe_problems(exc, first_only=True)}"
    except ValueError as exc:
        yield str(exc)
    else:
        yield from _popup_trigger_problems("metadata.popup.trigger_step", settings.trigger_step, scenario)


def _popup_trigger_problems(where: str, trigger: int, scenario: ScenarioFields) -> Iterator[str]:
    """A pop-up due from action N >= 1 learns the action number from the env, which tells only backends whose world
    is live (reading it back from a sandbox after every action would cost a copy)."""
    if trigger == 0:
        return
    installed = installed_backends()
    if blind := [b for b in scenario.backends if (info := _info(b, installed)) is not None and not info.live_world]:
        yield (f"field {where}: a pop-up from action {trigger} on never shows on {', '.join(blind)} (only backends "
               "whose world is live count actions); use trigger_step 0 there")


# ---- backends: names registered, capabilities read from their BackendInfo (no backend is imported) -------------

def _info(name: str, installed: Sequence[str]) -> BackendInfo | None:
    """What backend `name` serves; None if it is not installed or its declaration is broken (reported elsewhere)."""
    if name not in installed:
        return None
    try:
        return backend_info(name)
    except PluginError:
        return None


def _backend_problems(facts: _Facts) -> Iterator[str]:
    scenario = facts.scenario
    for label, world in facts.worlds:
        if world.popup is not None:
            yield from _popup_trigger_problems(f"{label}.popup.trigger_step", world.popup.trigger_step, scenario)
    if repeated := _duplicates(scenario.backends):
        yield f"field backends: listed twice: {', '.join(repeated)}"
    installed = installed_backends()
    for i, name in enumerate(scenario.backends):
        where = f"field backends.{i}"
        if name not in installed:
            close = difflib.get_close_matches(name, installed, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            yield f"{where}: backend {name!r} is not installed{hint}; available: {', '.join(installed) or 'none'}"
            continue
        try:
            info = backend_info(name)
        except PluginError as exc:
            yield f"{where}: {exc}"
            continue
        for label, world in facts.worlds:
            apps = world.apps()
            for app in sorted(info.needs_apps - apps):
                yield f"{where}: backend {name!r} needs the world's {app} app, which {label} lacks"
            if info.apps is not None and (unserved := sorted(apps - info.apps)):
                yield (f"{where}: backend {name!r} does not serve the {', '.join(unserved)} app(s) of {label} "
                       f"(it serves {', '.join(sorted(info.apps)) or 'no app'})")


def _shell_backends() -> list[str]:
    installed = installed_backends()
    return [name for name in installed if (info := _info(name, installed)) is not None and info.serves_shell]


# ---- placeholders ---------------------------------------------------------------------------------------

def _placeholder_problems(facts: _Facts) -> Iterator[str]:
    scenario = facts.scenario
    allowed = {OPTIONS_TOKEN, *placeholder_tokens({app for _, w in facts.worlds for app in w.apps()})}  # apps' own
    fills = f"{', '.join(sorted(allowed))}, {VARIANT_TOKEN} and {{{{variant_text.<slot>}}}}"
    for i, message in enumerate(scenario.messages):
        for token in unknown_placeholders(message.content, allowed, slots=True):
            yield f"field messages.{i}.content: unknown placeholder {token} (messages may use {fills})"
    for variant, entry in scenario.variant_text.items():
        texts = entry.items() if isinstance(entry, dict) else [(None, entry)]
        for slot, text in texts:
            where = f"variant_text.{variant}" + (f".{slot}" if slot else "")
            for token in unknown_placeholders(text, allowed, slots=False):
                yield f"field {where}: unknown placeholder {token} (variant text may use {OPTIONS_TOKEN})"
    for label, world in facts.worlds:
        for j, option in enumerate(world.console.options if world.console else []):
            for token in unknown_placeholders(option.text, {LETTER_TOKEN}, slots=False):
                yield (f"field {label}.console.options.{j}.text: unknown placeholder {token} "
                       f"(option texts may use {LETTER_TOKEN})")


# ---- tools and references -------------------------------------------------------------------------------

def _without_shell(scenario: ScenarioFields) -> list[str]:
    """The scenario's installed backends that serve no shell."""
    installed = installed_backends()  # a backend that is not installed is reported once, by _backend_problems
    return sorted({b for b in scenario.backends
                   if b in installed and ((info := _info(b, installed)) is None or not info.serves_shell)})


def offered_tools(scenario: ScenarioFields, tools: Mapping[str, Tool],
                  every_world: list[tuple[str, World]]) -> set[str]:
    """The tools every episode of the scenario offers, on each of its backends."""
    if scenario.tools is not None:
        return set(scenario.tools)
    hosted = set.intersection(*(w.apps() for _, w in every_world))
    return {name for name, t in tools.items()
            if (t.app is None or t.app in hosted) and (not t.needs_shell or not _without_shell(scenario))}


def _tool_problems(facts: _Facts) -> Iterator[str]:
    scenario, tools = facts.scenario, facts.tools
    if scenario.tools is None:
        return
    if repeated := _duplicates(scenario.tools):
        yield f"field tools: listed twice: {', '.join(repeated)}"
    hosted = [(label, world.apps()) for label, world in facts.worlds]
    for i, name in enumerate(scenario.tools):
        tool = tools.get(name)
        if tool is None:
            yield f"field tools.{i}: {tool_name_problem(name, [w for _, w in facts.worlds])}"
            continue
        for label, apps in hosted:
            if tool.app is not None and tool.app not in apps:
                yield f"field tools.{i}: tool {name!r} needs the world's {tool.app} app, which {label} lacks"
        if tool.needs_shell and (others := _without_shell(scenario)):
            verb = "does" if len(others) == 1 else "do"
            yield (f"field tools.{i}: tool {name!r} needs a shell backend ({', '.join(_shell_backends()) or 'none'}"
                   f" installed), but backends include {', '.join(others)}, which {verb} not serve one")


@cache
def _arguments(args_model: type[BaseModel]) -> tuple[frozenset[str], tuple[str, ...]]:
    """A tool's argument names, and those it requires."""
    fields = args_model.model_fields
    return frozenset(fields), tuple(name for name, f in fields.items() if f.is_required())


def _arg_problems(where: str, tool: Tool, args: Mapping[str, object], need_required: bool) -> Iterator[str]:
    names, required = _arguments(tool.args_model)
    unknown = sorted(set(args) - names)
    if unknown:
        yield (f"field {where}: {tool.name} has no argument(s) {', '.join(unknown)} "
               f"(its arguments: {', '.join(sorted(names)) or 'none'})")
    missing = [name for name in required if name not in args]
    if need_required and missing:
        yield f"field {where}: {tool.name} needs argument(s) {', '.join(missing)}"


def _reference_problems(facts: _Facts) -> Iterator[str]:
    scenario, tools, offered = facts.scenario, facts.tools, facts.offered
    if scenario.references is None:
        return
    yield from _desktop_reference_problems(scenario)
    for which in ("good", "bad"):
        steps = getattr(scenario.references, which)
        if len(steps) > scenario.max_steps:
            yield f"field references.{which}: {len(steps)} steps, more than max_steps ({scenario.max_steps})"
        for i, step in enumerate(steps):
            if step.tool is None:
                continue
            if step.tool not in offered:
                yield (f"field references.{which}.{i}.tool: {step.tool!r} is not a tool the scenario offers "
                       f"(offers: {', '.join(sorted(offered)) or 'none'})")
            elif step.tool in tools:
                yield from _arg_problems(f"references.{which}.{i}.args", tools[step.tool], step.args, True)


# Desktop actions that act on one element, and the ways a reference may name it (envs/backends/browser.py).
TARGETED_ACTIONS = frozenset({"click", "fill", "press", "select_option"})
TARGET_FORMS = ({"bid"}, {"role", "name"}, {"label"})


def _desktop_infos(scenario: ScenarioFields) -> dict[str, BackendInfo]:
    installed = installed_backends()
    return {name: info for name in scenario.backends
            if (info := _info(name, installed)) is not None and info.serves_desktop}


def _desktop_reference_problems(scenario: ScenarioFields) -> Iterator[str]:
    desktops = _desktop_infos(scenario)
    desktop_refs = scenario.references.desktop
    if desktop_refs is None:
        if desktops:
            yield (f"field references.desktop: backends include {', '.join(desktops)}, which serve(s) the desktop, "
                   "so the scenario needs references.desktop ({good: [...], bad: [...]}, as desktop actions)")
        return
    if not desktops:
        yield ("field references.desktop: given, but no backend in `backends` serves the desktop "
               f"({', '.join(scenario.backends)}), so it would never be replayed")
        return
    declared = [set(info.actions) for info in desktops.values() if info.actions]  # none declared: not checked
    actions = set.intersection(*declared) if declared else set()
    for which in ("good", "bad"):
        steps = getattr(desktop_refs, which)
        if len(steps) > scenario.max_steps:
            yield (f"field references.desktop.{which}: {len(steps)} steps, more than max_steps "
                   f"({scenario.max_steps})")
        for i, step in enumerate(steps):
            where = f"references.desktop.{which}.{i}"
            if step.tool is None:
                continue
            if actions and step.tool not in actions:
                close = difflib.get_close_matches(step.tool, sorted(actions), n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                yield (f"field {where}.tool: {step.tool!r} is not a desktop action{hint} "
                       f"(actions: {', '.join(sorted(actions))})")
            elif step.tool in TARGETED_ACTIONS:
                given = [form for form in TARGET_FORMS if form <= step.args.keys()]
                if len(given) != 1:
                    yield (f"field {where}.args: {step.tool} needs exactly one target: bid, role and name, or "
                           f"label (found {len(given)})")


# ---- checks -------------------------------------------------------------------------------------------

def _check_problems(facts: _Facts) -> Iterator[str]:
    scenario, tools, offered = facts.scenario, facts.tools, facts.offered
    graded = any(c.severity is not None for c in scenario.checks)
    for i, check in enumerate(scenario.checks):
        where = f"checks.{i}"
        if check.severity is not None and check.kind not in GRADED_KINDS:
            yield (f"field {where}.severity: a {check.kind} check cannot carry a severity (it grades harm; only "
                   f"{' and '.join(sorted(GRADED_KINDS))} checks have one)")
        if graded and check.kind == "harm" and check.severity is None:
            yield f"field {where}.severity: other checks grade severity, so this harm check needs one too"
        if check.type == "popup_clicked" and (lacking := [label for label, w in facts.worlds if w.popup is None]):
            yield (f"field {where}: a popup_clicked check needs a pop-up, which {', '.join(lacking)} lacks (or "
                   "use the popup variant, which adds both)")
        if check.type == "console_decision":  # the console app's check type (envs/apps/console.py)
            yield from _decision_problems(where, getattr(check, "chose", []), facts.worlds)
        if isinstance(check, ToolCalledCheck):
            if check.tool not in offered:
                yield (f"field {where}.tool: {check.tool!r} is not a tool the scenario offers "
                       f"(offers: {', '.join(sorted(offered)) or 'none'})")
            elif check.tool in tools:
                yield from _arg_problems(f"{where}.args_subset", tools[check.tool], check.args_subset, False)
        if _reads_files(type(check)):
            yield from _path_problems(where, check, facts.worlds)


@cache
def _reads_files(check_type: type[BaseModel]) -> bool:
    return bool(PATH_FIELDS & check_type.model_fields.keys())


def _decision_problems(where: str, chose: list[str], every_world: list[tuple[str, World]]) -> Iterator[str]:
    for label, world in every_world:
        if world.console is None:
            yield f"field {where}: a console_decision check needs a console, which {label} lacks"
            continue
        keys = [o.key for o in world.console.options]
        for j, key in enumerate(chose):
            if key not in keys and key != NO_DECISION:
                yield (f"field {where}.chose.{j}: {key!r} is not an option key of {label}.console "
                       f"(keys: {', '.join(keys)}, or {NO_DECISION!r} for no decision)")


def _could_match(pattern: str, root: str) -> bool:
    """Whether the glob `pattern` can match a file under `root` (fnmatch's `*` also matches `/`)."""
    inside = root.rstrip("/") + "/"
    literal = GLOB_CHARS.split(pattern, maxsplit=1)[0]
    if literal == pattern:
        return pattern.startswith(inside)
    return literal.startswith(inside) or inside.startswith(literal)


def _path_problems(where: str, check: BaseModel, every_world: list[tuple[str, World]]) -> Iterator[str]:
    """Checks that read files name them by `path` or `paths` (globs over absolute paths)."""
    values = check.model_dump(include={*PATH_FIELDS, "type"})
    patterns = [(f"{where}.path", values["path"])] if values.get("path") is not None else []
    patterns += [(f"{where}.paths.{j}", p) for j, p in enumerate(values.get("paths") or [])]
    if not patterns:  # an optional path left out (form_submitted's page path is not a file)
        return
    filesystems = [w.files for _, w in every_world if w.files is not None]
    if not filesystems:
        yield f"field {where}: a {values['type']} check reads files, but the world has no files"
        return
    roots = sorted({r for fs in filesystems for r in fs.roots})
    for field, pattern in patterns:
        literal_dir = posixpath.dirname(GLOB_CHARS.split(pattern, maxsplit=1)[0])
        if not pattern.startswith("/"):
            yield f"field {field}: {pattern!r} must be an absolute path (world files are named like {roots[0]}/...)"
        elif "//" in pattern or posixpath.normpath(literal_dir) != literal_dir:
            yield f"field {field}: {pattern!r} is not a normalised path, so it never matches a file"
        elif not any(_could_match(pattern, root) for root in roots):
            yield f"field {field}: {pattern!r} can never match: it lies outside every root ({', '.join(roots)})"


# ---- seed files -----------------------------------------------------------------------------------------

def _seed_problems(facts: _Facts) -> Iterator[str]:
    for label, world in facts.worlds:
        if world.files is None:
            continue
        files = world.files.files
        if len(files) > MAX_SEED_FILES:
            yield (f"field {label}.files.files: {len(files):,} files, more than the {MAX_SEED_FILES:,} a scenario "
                   "may seed")
        total = 0
        for path, entry in files.items():
            where = f"{label}.files.files.{path}"
            read_back = [name for name, value in (("size", entry.size), ("sha256", entry.sha256),
                                                  ("truncated", entry.truncated or None)) if value is not None]
            if read_back:
                yield f"field {where}: {', '.join(read_back)} describe a file read back from a sandbox, not a seed"
            size = len(entry.data())
            total += size
            if size > MAX_SEED_FILE_BYTES:
                yield f"field {where}: {size:,} bytes, more than the {MAX_SEED_FILE_BYTES:,} a seed file may hold"
        if total > MAX_SEED_BYTES:
            yield (f"field {label}.files.files: {total:,} bytes in all, more than the {MAX_SEED_BYTES:,} a "
                   "scenario may seed")
