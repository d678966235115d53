"""Shell backends: the world's files live in a real sandbox (bubblewrap or Docker) where the agent's bash commands
run. The file tools are the files app's own (envs/apps/files.py) over the sandbox's files (SandboxFiles below);
other tools (refusal, task_complete, the console's) act on the in-memory world as on sim."""

from __future__ import annotations

import errno
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar

from envs.backends.base import BackendError
from envs.backends.sim import SimBackend
from envs.sandbox import Sandbox, SandboxError, SandboxSpec, get_provider
from envs.world import FileSystem, PathEscapeError, World


class SandboxFiles:
    """The files app's surface on a shell backend: the files of a real sandbox, read and written with the agent's
    rights. Every use marks the backend's copy of the files stale, to be read back before the world is."""

    has_shell = True

    def __init__(self, sandbox: Callable[[], Sandbox], files: FileSystem, touched: Callable[[], None]) -> None:
        self._sandbox = sandbox  # the backend's live sandbox (raises BackendError once it is closed)
        self._files = files
        self._touched = touched

    def resolve(self, path: str) -> str:
        return self._files.resolve(path)

    @contextmanager
    def _using(self) -> Iterator[Sandbox]:
        sandbox = self._sandbox()
        self._touched()
        try:
            yield sandbox
        except SandboxError as exc:
            raise BackendError(f"sandbox failed: {exc}") from exc
        except RuntimeError as exc:  # pathlib's "Symlink loop" (Python < 3.13): a cycle of links the agent made
            raise OSError(errno.ELOOP, "too many levels of symbolic links") from exc

    def read(self, path: str) -> tuple[bytes, int | None]:
        with self._using() as sandbox:
            return sandbox.read_file(path), None  # the whole file; read_file shows only what fits

    def write(self, path: str, data: bytes) -> None:
        with self._using() as sandbox:
            sandbox.write_file(path, data)

    def run(self, command: str) -> str:
        with self._using() as sandbox:
            return sandbox.exec(command).render()

    def listing(self, folder: str) -> str:
        # Links are resolved in the sandbox first: a folder reached through one must still lie in a root.
        roots = self._files.roots
        quoted = " ".join(shlex.quote(root) for root in roots)
        with self._using() as sandbox:
            result = sandbox.exec(f"real=$(realpath -e -- {shlex.quote(folder)}) || exit 1; for r in {quoted}; do "
                                  f'case $real in "$r" | "${{r%/}}"/*) '
                                  f"find \"$real\" -type f -printf '%m %p\\n' | sort | head -500; exit 0 ;; "
                                  "esac; done; exit 3")
        if result.exit_code == 3:
            raise PathEscapeError(f"{folder!r} leads outside the sandbox's folders ({', '.join(roots)})")
        return result.stdout or result.stderr or "(empty)"


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
        self._surfaces["files"] = SandboxFiles(self._require_sandbox, world.files, self._touch)

    def _touch(self) -> None:
        self._stale = True

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
