"""The filesystem app: the files a scenario seeds and the agent works on, by absolute POSIX path.

On shell backends the files live in a real sandbox and are read back into this model after every
command, so the same checks judge every surface.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import posixpath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from envs.world.paths import is_under

MAX_READBACK_BYTES = 256 * 1024  # larger files keep their size and hash, not their content


class PathEscapeError(ValueError):
    """A path points outside the places the agent may touch."""


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
