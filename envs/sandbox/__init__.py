"""Sandboxes for shell backends. Importing this package registers the providers."""

from envs.sandbox import docker, local  # noqa: F401  (registers the providers)
from envs.sandbox.base import (
    ExecResult,
    Sandbox,
    SandboxError,
    SandboxLimits,
    SandboxProvider,
    SandboxSpec,
    SandboxUnavailable,
    get_provider,
    register_provider,
    shutdown_providers,
)

__all__ = ["ExecResult", "Sandbox", "SandboxError", "SandboxLimits", "SandboxProvider", "SandboxSpec",
           "SandboxUnavailable", "get_provider", "register_provider", "shutdown_providers"]
