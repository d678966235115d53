"""One sandbox interface, several providers (registered by name).

A sandbox is a place where an agent's shell commands run with no network, no access to the host's
files, and limits on time, memory, processes and disk. Its work dir is materialised from the
scenario's files and read back after each command.
"""

from __future__ import annotations

import atexit
import errno
import shlex
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from envs.plugins import PluginError, Registry, UnknownPart, a_callable
from envs.world.files import FileEntry


class SandboxError(RuntimeError):
    """The sandbox itself failed (crashed, engine lost); the episode is recorded as an error."""


class SandboxUnavailable(SandboxError):
    """The provider cannot run on this machine (tool missing, engine not running); says how to fix it."""


class NotRegularFileError(OSError):
    """A file tool was pointed at a FIFO, socket or device: never read or written (it could block forever); the
    agent's mistake, so a tool error."""

    def __init__(self, path: str) -> None:
        super().__init__(errno.EINVAL, "not a regular file (a FIFO, socket or device)", path)


# Files (inodes) a sandbox root may hold: capped where they live, so the snapshot can always read them all.
MAX_FILES_PER_ROOT = 20_000


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 30.0  # per command
    output_bytes: int = 16 * 1024  # per stream, per command (both fit in one observation)
    memory_mb: int = 512
    pids: int = 128
    disk_mb: int = 64  # the work dir's size
    cpus: float = 1.0


@dataclass(frozen=True)
class SandboxSpec:
    """What a sandbox must look like. `image` is a docker image (None = the project's base image)."""

    workdir: str = "/workspace"
    image: str | None = None
    extra_roots: tuple[str, ...] = ()
    limits: SandboxLimits = field(default_factory=SandboxLimits)


class ExecResult(BaseModel):
    exit_code: int | None  # None when the command was killed (timeout, memory)
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    output_truncated: bool = False
    duration_s: float = 0.0

    def render(self) -> str:
        """The observation an agent sees."""
        status = "timed out (killed)" if self.timed_out else f"exit code {self.exit_code}"
        if self.output_truncated:
            status += "; output truncated"
        parts = [f"[{status}]"]
        if self.stdout:
            parts.append(self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append("[stderr]\n" + self.stderr.rstrip("\n"))
        return "\n".join(parts)


class Sandbox(ABC):
    spec: SandboxSpec

    @abstractmethod
    def exec(self, command: str, timeout_s: float | None = None, stdin: bytes | None = None) -> ExecResult:
        """Run `command` with bash in the work dir as the unprivileged agent user, `stdin` fed to it. The
        command's own failures (non-zero exit, timeout, killed for memory) are reported in the result, never
        raised. Raises SandboxError if the sandbox itself is broken."""

    @abstractmethod
    def read_file(self, path: str) -> bytes:
        """Read a file by absolute path. Raises FileNotFoundError, IsADirectoryError, PathEscapeError
        (outside the roots), SandboxError."""

    @abstractmethod
    def write_file(self, path: str, data: bytes) -> None:
        """Write a file as the agent user (so permissions apply). Raises PathEscapeError,
        PermissionError, SandboxError."""

    def _write_as_agent(self, path: str, data: bytes) -> None:
        """Write through the agent's own shell, so the file's permissions apply as they would to the agent."""
        result = self.exec(f"cat > {shlex.quote(path)}", stdin=data)
        if result.exit_code != 0:
            if "Permission denied" in result.stderr:
                raise PermissionError(path)
            if "Is a directory" in result.stderr:
                raise IsADirectoryError(path)
            raise FileNotFoundError(f"{path}: {result.stderr.strip()}")

    @abstractmethod
    def snapshot_files(self) -> dict[str, FileEntry]:
        """Every regular file under the roots, by absolute path. Raises SandboxError."""

    @abstractmethod
    def reset(self, files: dict[str, FileEntry]) -> None:
        """Restore the roots to exactly `files` and end any process left from earlier commands.
        Raises SandboxError."""

    @abstractmethod
    def close(self) -> None:
        """Destroy the sandbox. Safe to call twice; never raises."""


class SandboxProvider(ABC):
    name: str

    @abstractmethod
    def check(self) -> None:
        """Raise SandboxUnavailable, saying how to fix it, if the provider cannot run here."""

    @abstractmethod
    def acquire(self, spec: SandboxSpec) -> Sandbox:
        """A ready sandbox for `spec` (from a warm pool where the provider has one). Raises
        SandboxUnavailable when the provider cannot run here, SandboxError on failure."""

    def release(self, sandbox: Sandbox) -> None:
        """Give a sandbox back after an episode; the default destroys it."""
        sandbox.close()

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Destroy every sandbox the provider holds."""


# Found through the entry-point group `safety_sandbox.sandbox_provider`; each entry point names a factory (usually the
# provider class) called with no arguments.
PROVIDERS: Registry[Callable[[], SandboxProvider]] = Registry("sandbox_provider", a_callable)
_PROVIDERS: dict[str, SandboxProvider] = {}  # the providers started in this process
_LOCK = threading.Lock()


def register_provider(name: str) -> Callable[[Callable[[], SandboxProvider]], Callable[[], SandboxProvider]]:
    """Register a provider factory in this process only (tests); installed packages declare an entry point."""

    def register(factory: Callable[[], SandboxProvider]) -> Callable[[], SandboxProvider]:
        return PROVIDERS.add(name, factory)

    return register


def get_provider(name: str) -> SandboxProvider:
    """The process-wide provider (it owns the warm pool); shut down at interpreter exit."""
    with _LOCK:
        if name not in _PROVIDERS:
            try:
                factory = PROVIDERS.get(name)
            except UnknownPart as exc:
                raise SandboxUnavailable(str(exc)) from None
            provider = factory()
            if not isinstance(provider, SandboxProvider):
                raise PluginError(f"sandbox provider {name!r}: its factory made a {type(provider).__qualname__}, "
                                  "not a SandboxProvider")
            _PROVIDERS[name] = provider
        return _PROVIDERS[name]


def replace_provider(name: str, provider: SandboxProvider) -> SandboxProvider | None:
    """Make `provider` the process-wide one for `name` (benchmarks comparing two set-ups); the one it replaces is
    returned, not shut down."""
    with _LOCK:
        previous = _PROVIDERS.get(name)
        _PROVIDERS[name] = provider
        return previous


def shutdown_providers() -> None:
    with _LOCK:
        providers = list(_PROVIDERS.values())
        _PROVIDERS.clear()
    for provider in providers:
        provider.shutdown()


atexit.register(shutdown_providers)
