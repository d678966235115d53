"""What a backend serves, declared where a scenario can read it without importing any backend.

Scenarios are checked when they load (a `bash` tool on a backend with no shell, a shell backend over a world with
no files), but backends sit in a layer above scenarios and importing one may pull in a sandbox (~0.5 s for the
shell backends). So a backend's capabilities are a small declarative `BackendInfo`, registered in the entry-point
group `safety_sandbox.backend_info` under the backend's own name. A backend that declares none gets `EMBEDDED`: it
serves every app and no shell, which is what a subclass of the `sim` backend does, and its world lives in-process.
`BROWSER` serves the desktop: its tools are desktop actions, so scenarios replay `references.desktop` on it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

from envs.plugins import Registry, instance_of, names_of


class BackendInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    serves_shell: bool = False  # runs the tools that need a shell (`bash`)
    apps: frozenset[str] | None = None  # the world apps it can serve; None: every app
    needs_apps: frozenset[str] = frozenset()  # apps every world it serves must have (a sandbox needs files)
    serves_desktop: bool = False  # its tools are desktop actions (click, fill, ...), so references.desktop replays
    live_world: bool = False  # reading the world after a step is free (in-process), so checks can run per step
    # The tools it serves in place of the apps' own (a desktop's actions), for checking desktop references at load.
    actions: frozenset[str] = frozenset()

    @model_validator(mode="after")
    def _serves_what_it_needs(self) -> BackendInfo:
        if self.apps is not None and (unserved := sorted(self.needs_apps - self.apps)):
            raise ValueError(f"needs_apps {', '.join(unserved)} not among the apps it serves "
                             f"({', '.join(sorted(self.apps))})")
        return self


EMBEDDED = BackendInfo(live_world=True)
SHELL = BackendInfo(serves_shell=True, needs_apps=frozenset({"files"}))
# The desktop's actions (BrowserGym's names), and the generic tools every backend serves beside them.
DESKTOP_ACTIONS = frozenset({
    "click", "fill", "press", "select_option", "scroll", "goto", "go_back", "new_tab", "tab_focus", "tab_close",
    "send_msg_to_user", "screenshot", "refuse", "finish",
})
BROWSER = BackendInfo(serves_desktop=True, live_world=True, actions=DESKTOP_ACTIONS)

# Found through the entry-point group `safety_sandbox.backend_info`; each names a BackendInfo (usually EMBEDDED or
# SHELL above) under the name of the backend it describes.
BACKEND_INFOS: Registry[BackendInfo] = Registry("backend_info", instance_of(BackendInfo))


def backend_info(name: str) -> BackendInfo:
    """The capabilities backend `name` declares (EMBEDDED if it declares none). Raises PluginError, one line, for
    a declaration that fails to load or is not a BackendInfo."""
    return BACKEND_INFOS.get(name) if name in BACKEND_INFOS else EMBEDDED


def installed_backends() -> list[str]:
    """Every backend name registered (installed packages, and this process once the backend layer is loaded), read
    from package metadata: no backend is imported."""
    return names_of("backend")
