"""File and shell tools. On the sim backend the file tools work on the world's files in memory; shell
backends serve all of them from a real sandbox (see envs/backends/shell.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from envs.spaces import MAX_TEXT
from envs.tools.base import ToolError, tool
from envs.world import FileEntry, FileSystem, PathEscapeError, World
from envs.world.files import MAX_READBACK_BYTES, file_entry_from_bytes

# The longest bash command accepted (UTF-8 bytes): far beyond any real command, small enough to pass through a
# sandbox's stdin.
MAX_COMMAND_BYTES = 1 << 20
# Linux's limits on a path and on one name in it (PATH_MAX, NAME_MAX), in bytes.
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


def _within(text: str, what: str, limit: int) -> str:
    """`text` with no NUL byte and at most `limit` UTF-8 bytes (counted cheaply when it is clearly too long)."""
    if "\x00" in text:
        raise ValueError(f"the {what} contains a NUL byte")
    size = len(text) if len(text) > limit else len(text.encode())
    if size > limit:
        raise ValueError(f"the {what} is {size} bytes (UTF-8); the limit is {limit} bytes")
    return text


def _runnable_command(command: str) -> str:
    return _within(command, "command", MAX_COMMAND_BYTES)


def _usable_path(path: str) -> str:
    _within(path, "path", MAX_PATH_BYTES)
    longest = max((len(name.encode()) for name in path.split("/")), default=0)
    if longest > MAX_NAME_BYTES:
        raise ValueError(f"a name in the path is {longest} bytes (UTF-8); the limit is {MAX_NAME_BYTES}")
    return path


Command = Annotated[str, AfterValidator(_runnable_command)]
AgentPath = Annotated[str, AfterValidator(_usable_path)]


class BashArgs(BaseModel):
    command: Command = Field(min_length=1, description="A bash command, run in the work dir.")


class PathArgs(BaseModel):
    path: AgentPath = Field(min_length=1, description="File path, relative to the work dir or absolute.")


class WriteArgs(BaseModel):
    path: AgentPath = Field(min_length=1, description="File path, relative to the work dir or absolute.")
    content: str = Field(description="The full new content of the file.")


class ListArgs(BaseModel):
    path: AgentPath = Field(default=".", description="Folder to list, relative to the work dir.")


def file_text(data: bytes, size: int | None = None, max_chars: int = MAX_TEXT) -> str:
    """A file's bytes (the start of `size` bytes, if given) as read_file shows them: decoded, at most `max_chars`
    characters, and when cut, a note of the file's size. Only what can be shown is decoded (4 bytes hold any
    character)."""
    size = len(data) if size is None else size
    shown = data[: 4 * max_chars].decode("utf-8", errors="replace")
    if size == len(data) <= 4 * max_chars and len(shown) <= max_chars:
        return shown
    note = f"\n...[the file is {size} bytes; only its start is shown]"
    return shown[: max_chars - len(note)] + note


def _files(world: World) -> FileSystem:
    if world.files is None:
        raise ToolError("this world has no files")
    return world.files


def _resolve(files: FileSystem, path: str) -> str:
    try:
        return files.resolve(path)
    except PathEscapeError as exc:
        raise ToolError(str(exc)) from None


@tool(name="bash", args=BashArgs, app="files", needs_shell=True)
def bash(world: World, args: BashArgs) -> str:
    """Run a bash command in the sandbox's work dir and see its exit code and output."""
    raise ToolError("bash needs a shell backend (backend=local or backend=docker)")


@tool(name="read_file", args=PathArgs, app="files")
def read_file(world: World, args: PathArgs) -> str:
    """Read a text file."""
    files = _files(world)
    path = _resolve(files, args.path)
    if path not in files.files:
        raise ToolError(f"no such file: {args.path}")
    entry = files.files[path]
    return file_text(entry.data(), entry.size)


@tool(name="write_file", args=WriteArgs, app="files")
def write_file(world: World, args: WriteArgs) -> str:
    """Create or overwrite a text file."""
    files = _files(world)
    path = _resolve(files, args.path)
    existing = files.files.get(path)
    if existing is not None and existing.read_only:
        raise ToolError(f"permission denied: {args.path} is read-only")
    data, mode = args.content.encode(), existing.mode if existing else 0o644
    # A big file is kept as a sandbox's read-back keeps it (its start, size and hash), so sim worlds stay small.
    big = len(data) > MAX_READBACK_BYTES
    files.files[path] = file_entry_from_bytes(data, mode) if big else FileEntry(content=args.content, mode=mode)
    return f"wrote {len(data)} bytes to {path}"


@tool(name="list_files", args=ListArgs, app="files")
def list_files(world: World, args: ListArgs) -> str:
    """List the files under a folder, with their permissions."""
    files = _files(world)
    folder = _resolve(files, args.path).rstrip("/") + "/"
    rows = [f"{oct(e.mode)[2:]:>4} {p}" for p, e in sorted(files.files.items()) if p.startswith(folder)]
    return "\n".join(rows) or "(empty)"
