from envs.backends import shell, sim  # noqa: F401  (registers the backends)
from envs.backends.base import (
    Backend,
    BackendError,
    backend_class,
    backend_names,
    make_backend,
    register_backend,
)

__all__ = ["Backend", "BackendError", "backend_class", "backend_names", "make_backend", "register_backend"]
