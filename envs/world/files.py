"""The files app's state: the files a scenario seeds and the agent works on, by absolute POSIX path.

The file tools (envs/apps/files.py) act on a FileSurface: this in-memory FileSystem on the embedded backend, the
real sandbox on shell backends (envs/backends/shell.py), whose files are read back into this model after every
command, so the same checks judge every surface.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import posixpath
from typing import ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from envs.world.paths import is_under

MAX_READBACK_BYTES = 256 * 1024  # larger files keep their size and hash, not their content


class PathEscapeError(ValueError):
    """A path points outside the places the agent may touch."""


class ReadOnlyFileError(PermissionError):
    """The file's mode forbids writing it (a surface that can tell why raises this rather than PermissionError)."""


class FileSurface(Protocol):
    """What the file tools act on. Paths passed in are resolved ones. Failures are the OSError family
    (FileNotFoundError, IsADirectoryError, PermissionError, ...) or PathEscapeError, for the tools to explain."""

    has_shell: bool  # whether `run` runs commands

    def resolve(self, path: str) -> str:
        """An agent-given path as a normal absolute path inside a root; raises PathEscapeError."""
        ...

    def read(self, path: str) -> tuple[bytes, int | None]:
        """The file's bytes (or their start) and its whole size (None: the bytes are all of it)."""
        ...

    def write(self, path: str, data: bytes) -> None: ...

    def listing(self, folder: str) -> str:
        """The files under `folder` with their permissions, one a line, or "(empty)"."""
        ...

    def run(self, command: str) -> str:
        """Run a bash command in the work dir; its exit code and output as the agent sees them."""
        ...


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str = ""
    # "base64": `content` holds the bytes of a file that is not UTF-8 text (e.g. an imported PDF), so a sandbox
    # is seeded with the exact bytes. Files read back from a sandbox are always text (see file_entry_from_bytes).
    encoding: Literal["utf-8", "base64"] = "utf-8"
    mode: int = Field(default=0o644, ge=0, le=0o7777)
    size: int | None = None  # set on read-back; None means len(content.encode())
    sha256: str | None = None  # set on read-back
    truncated: bool = False  # content cut at MAX_READBACK_BYTES

    @field_validator("mode", mode="before")
    @classmethod
    def _octal_text(cls, value: object) -> object:
        """Scenario files write modes as octal text ("0o555" or "555"); YAML would misread bare 0555."""
        if isinstance(value, str):
            try:
                return int(value.removeprefix("0o"), 8)
            except ValueError:
                raise ValueError(f"mode {value!r} is not octal (write e.g. '0o644')") from None
        return value

    @model_validator(mode="after")
    def _valid_base64(self) -> FileEntry:
        if self.encoding == "base64":
            try:
                base64.b64decode(self.content, validate=True)
            except binascii.Error:
                raise ValueError("content is not valid base64 (encoding: base64)") from None
        return self

    def data(self) -> bytes:
        """The file's bytes, as a sandbox is seeded with them."""
        return base64.b64decode(self.content) if self.encoding == "base64" else self.content.encode("utf-8")

    def digest(self) -> str:
        return self.sha256 or hashlib.sha256(self.data()).hexdigest()

    @property
    def read_only(self) -> bool:
        return not self.mode & 0o222

    def same_as(self, other: FileEntry) -> bool:
        return self.digest() == other.digest() and self.mode == other.mode


def file_entry_from_bytes(data: bytes, mode: int) -> FileEntry:
    digest = hashlib.sha256(data).hexdigest()
    truncated = len(data) > MAX_READBACK_BYTES
    text = data[:MAX_READBACK_BYTES].decode("utf-8", errors="replace")
    return FileEntry(content=text, mode=mode, size=len(data), sha256=digest, truncated=truncated)


def _check_root(root: str) -> None:
    if not root.startswith("/") or root.startswith("//") or posixpath.normpath(root) != root:
        raise ValueError(f"folder {root!r} must be absolute and normalised")


class FileSystem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workdir: str = "/workspace"
    files: dict[str, FileEntry] = Field(default_factory=dict)
    # Folders read back besides the work dir (imported scenarios place tools in e.g. /usr/local/bin).
    extra_roots: list[str] = Field(default_factory=list)
    image: str | None = None  # docker image the files are served from (None = the project's base image)

    @field_validator("files")
    @classmethod
    def _absolute_normal_paths(cls, files: dict[str, FileEntry]) -> dict[str, FileEntry]:
        for path in files:
            if not path.startswith("/") or path.startswith("//") or posixpath.normpath(path) != path:
                raise ValueError(f"file path {path!r} must be absolute and normalised")
        return files

    @field_validator("workdir")
    @classmethod
    def _absolute_normal_workdir(cls, workdir: str) -> str:
        _check_root(workdir)
        return workdir

    @field_validator("extra_roots")
    @classmethod
    def _absolute_normal_roots(cls, roots: list[str]) -> list[str]:
        for root in roots:
            _check_root(root)
        return roots

    @model_validator(mode="after")
    def _files_inside_roots(self) -> FileSystem:
        """A seeded file outside every root would never reach the sandbox (nor be read back): refuse it."""
        roots = [root.rstrip("/") + "/" for root in self.roots]
        for path in self.files:
            if not any(path.startswith(root) for root in roots):
                raise ValueError(f"file {path!r} lies outside the work dir {self.workdir}"
                                 + (f" and the extra roots {', '.join(self.extra_roots)}" if self.extra_roots else ""))
        return self

    @property
    def roots(self) -> list[str]:
        return [self.workdir, *self.extra_roots]

    def resolve(self, path: str) -> str:
        """An agent-given path (relative to the work dir or absolute) as a normal absolute path inside
        one of the roots; `..` tricks and paths elsewhere raise PathEscapeError."""
        if "\x00" in path:
            raise PathEscapeError("path contains a NUL byte")
        joined = path if path.startswith("/") else posixpath.join(self.workdir, path)
        normal = posixpath.normpath(joined)
        if normal.startswith("//"):
            normal = normal[1:]
        if not any(is_under(normal, root) for root in self.roots):
            raise PathEscapeError(f"{path!r} is outside the work dir {self.workdir}")
        return normal

    # ---- the FileSurface of the embedded backend: the files in memory ---------------------------------------
    has_shell: ClassVar[bool] = False

    def read(self, path: str) -> tuple[bytes, int | None]:
        entry = self.files.get(path)
        if entry is None:
            raise FileNotFoundError(path)
        return entry.data(), entry.size

    def write(self, path: str, data: bytes) -> None:
        existing = self.files.get(path)
        if existing is not None and existing.read_only:
            raise ReadOnlyFileError(path)
        mode = existing.mode if existing else 0o644
        # A big file is kept as a sandbox's read-back keeps it (its start, size and hash), so sim worlds stay small.
        big = len(data) > MAX_READBACK_BYTES
        self.files[path] = file_entry_from_bytes(data, mode) if big else FileEntry(content=data.decode(), mode=mode)

    def remove(self, path: str) -> None:
        """Delete a file (the desktop's file manager); a read-only one stays, as the file tools leave it alone."""
        entry = self.files.get(path)
        if entry is None:
            raise FileNotFoundError(path)
        if entry.read_only:
            raise ReadOnlyFileError(path)
        del self.files[path]

    def listing(self, folder: str) -> str:
        inside = folder.rstrip("/") + "/"
        rows = [f"{oct(e.mode)[2:]:>4} {p}" for p, e in sorted(self.files.items()) if p.startswith(inside)]
        return "\n".join(rows) or "(empty)"

    def run(self, command: str) -> str:
        raise OSError(errno.ENOSYS, "files in memory run no commands")
