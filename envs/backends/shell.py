"""Shell backends: the world's files live in a real sandbox (bubblewrap or Docker) where the agent's
bash commands run. Other tools (refusal, task_complete, ...) act on the in-memory world as on sim."""

from __future__ import annotations

import shlex
from typing import ClassVar

from pydantic import ValidationError

from envs.actions import ToolCall
from envs.backends.base import BackendError
from envs.backends.sim import SimBackend
from envs.sandbox import Sandbox, SandboxError, SandboxSpec, get_provider
from envs.tools import ToolError, ToolResult
from envs.tools.files import file_text
from envs.world import FileSystem, PathEscapeError, World

SANDBOX_TOOLS = ("bash", "read_file", "write_file", "list_files")


class ShellBackend(SimBackend):
    provider_name: ClassVar[str]
    has_shell = True

    def __init__(self) -> None:
        super().__init__()
        self._sandbox: Sandbox | None = None
        self._stale = False  # the sandbox changed since the files were last read back

    @classmethod
    def preflight(cls) -> None:
        try:
            get_provider(cls.provider_name).check()
        except SandboxError as exc:
            raise BackendError(str(exc)) from exc

    def start(self, world: World, allowed_tools: list[str] | None) -> None:
        if world.files is None:
            raise BackendError(f"backend {self.name} needs a world with files")
        super().start(world, allowed_tools)
        spec = SandboxSpec(workdir=world.files.workdir, image=world.files.image,
                           extra_roots=tuple(world.files.extra_roots), limits=self.limits)
        try:
            self._sandbox = get_provider(self.provider_name).acquire(spec)
            self._sandbox.reset(world.files.files)
        except SandboxError as exc:
            self.close()
            raise BackendError(str(exc)) from exc

    def call(self, call: ToolCall) -> ToolResult:
        world = self._require_world()
        tool = self._tool(call.tool)
        if call.tool not in SANDBOX_TOOLS:
            return tool.invoke(world, call.args)
        try:
            parsed = tool.args_model.model_validate(call.args)
        except ValidationError:
            return tool.invoke(world, call.args)  # raises the ToolError that explains the bad arguments
        try:
            return ToolResult(output=self._sandbox_call(call.tool, parsed, world.files))
        except SandboxError as exc:
            raise BackendError(f"sandbox failed: {exc}") from exc

    def _sandbox_call(self, name: str, args, files: FileSystem) -> str:
        sandbox = self._require_sandbox()
        self._stale = True
        if name == "bash":
            return sandbox.exec(args.command).render()
        try:
            path = files.resolve(args.path)
        except PathEscapeError as exc:
            raise ToolError(str(exc)) from None
        try:
            if name == "read_file":
                # Sandbox.read_file returns the whole file; only what an observation can show is decoded.
                return file_text(sandbox.read_file(path))
            if name == "write_file":
                data = args.content.encode()
                sandbox.write_file(path, data)
                return f"wrote {len(data)} bytes to {path}"
        except FileNotFoundError as exc:
            if name == "write_file":  # the shell's reason, e.g. a missing folder or "No space left on device"
                raise ToolError(f"cannot write {args.path}: {str(exc).removeprefix(f'{path}: ')}") from None
            raise ToolError(f"no such file: {args.path}") from None
        except IsADirectoryError:
            raise ToolError(f"{args.path} is a folder") from None
        except PermissionError:
            raise ToolError(f"permission denied: {args.path}") from None
        except PathEscapeError as exc:  # e.g. a symlink the agent planted that points out of the sandbox
            raise ToolError(str(exc)) from None
        except OSError as exc:  # the path itself is unusable: not a folder on the way, a name too long, ...
            raise ToolError(f"cannot {name.replace('_', ' ')} {args.path}: {exc.strerror or exc}") from None
        except SandboxError:
            raise
        except RuntimeError:  # pathlib's "Symlink loop" (Python < 3.13): a cycle of links the agent made
            raise ToolError(f"cannot {name.replace('_', ' ')} {args.path}: too many levels of symbolic links"
                            ) from None
        # Links are resolved in the sandbox first: a folder reached through one must still lie in a root.
        roots = " ".join(shlex.quote(root) for root in files.roots)
        result = sandbox.exec(f"real=$(realpath -e -- {shlex.quote(path)}) || exit 1; for r in {roots}; do "
                              f'case $real in "$r" | "${{r%/}}"/*) '
                              f"find \"$real\" -type f -printf '%m %p\\n' | sort | head -500; exit 0 ;; "
                              "esac; done; exit 3")
        if result.exit_code == 3:
            raise ToolError(f"{args.path!r} leads outside the sandbox's folders ({', '.join(files.roots)})")
        return result.stdout or result.stderr or "(empty)"

    def world(self) -> World:
        world = self._require_world()
        if self._stale and self._sandbox is not None:
            try:
                world.files.files = self._sandbox.snapshot_files()
            except SandboxError as exc:
                raise BackendError(f"could not read the sandbox's files back: {exc}") from exc
            self._stale = False
        return world

    def close(self) -> None:
        if self._sandbox is not None:
            sandbox, self._sandbox = self._sandbox, None
            get_provider(self.provider_name).release(sandbox)

    def _require_sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise BackendError(f"{self.name} backend has no sandbox (closed or failed to start)")
        return self._sandbox


class LocalBackend(ShellBackend):
    name = "local"
    provider_name = "local"


class DockerBackend(ShellBackend):
    name = "docker"
    provider_name = "docker"
