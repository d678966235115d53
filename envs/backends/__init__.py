"""Backends serve a world to the agent; each is found by name through the entry-point group
`safety_sandbox.backend` (see pyproject.toml), so importing this package imports no backend."""

from envs.backends.base import (
    BACKENDS,
    Backend,
    BackendError,
    backend_class,
    backend_names,
    make_backend,
    register_backend,
)

__all__ = ["BACKENDS", "Backend", "BackendError", "backend_class", "backend_names", "make_backend",
           "register_backend"]
