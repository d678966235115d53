"""Gymnasium environments over sandboxed worlds. `gymnasium.make("SafetySandbox-v0", scenario=...)`.

`import envs` registers SafetySandbox-v0 with Gymnasium without importing it (~0.15 s, most of a quick start such as
`python -m envs.run` on a scripted agent): at once if Gymnasium is already imported, else the moment it is.
"""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

ENV_ID = "SafetySandbox-v0"


def register() -> None:
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="envs.env:SafetyEnv", disable_env_checker=False)


class _ThenRegister:
    """Gymnasium's own loader, which registers the env once Gymnasium's module has run."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _stop_watching()
        register()

    def __getattr__(self, name: str) -> Any:  # resource readers, get_source, ...: the real loader's
        return getattr(self._loader, name)


class _RegisterWhenImported:
    """An import hook: finds Gymnasium with the other finders and wraps its loader. It stays until Gymnasium runs, so
    a mere look-up (importlib.util.find_spec, to see whether it is installed) does not use it up."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if fullname != "gymnasium":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _ThenRegister(spec.loader)  # type: ignore[assignment]
                return spec
        return None


def _stop_watching() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _RegisterWhenImported)]


if "gymnasium" in sys.modules:
    register()
elif not any(isinstance(finder, _RegisterWhenImported) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenImported())
