"""Sandboxes for shell backends. Providers are found by name through the entry-point group
`safety_sandbox.sandbox_provider` (see pyproject.toml), so importing this package starts none."""

from envs.sandbox.base import (
    PROVIDERS,
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

__all__ = ["PROVIDERS", "ExecResult", "Sandbox", "SandboxError", "SandboxLimits", "SandboxProvider", "SandboxSpec",
           "SandboxUnavailable", "get_provider", "register_provider", "shutdown_providers"]
