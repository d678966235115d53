"""The files app: one implementation of the file and shell tools over a FileSurface (envs.world.files) — the
world's files in memory on the embedded backend, a real sandbox on shell backends — so every backend checks the
same arguments and reports failures in the same words."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from envs.spaces import MAX_TEXT
from envs.tools.base import ToolError, tool
from envs.world.app import App
from envs.world.files import FileSurface, FileSystem, PathEscapeError, ReadOnlyFileError

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


def _resolve(files: FileSurface, path: str) -> str:
    try:
        return files.resolve(path)
    except PathEscapeError as exc:
        raise ToolError(str(exc)) from None


@contextmanager
def _explained(action: str, shown: str, resolved: str) -> Iterator[None]:
    """A surface's failure as the agent reads it; `shown` is the path as the agent wrote it."""
    try:
        yield
    except FileNotFoundError as exc:
        if action == "write file":  # the shell's reason, e.g. a missing folder or "No space left on device"
            raise ToolError(f"cannot write {shown}: {str(exc).removeprefix(f'{resolved}: ')}") from None
        raise ToolError(f"no such file: {shown}") from None
    except IsADirectoryError:
        raise ToolError(f"{shown} is a folder") from None
    except ReadOnlyFileError:
        raise ToolError(f"permission denied: {shown} is read-only") from None
    except PermissionError:
        raise ToolError(f"permission denied: {shown}") from None
    except PathEscapeError as exc:  # e.g. a symlink the agent planted that points out of the sandbox
        raise ToolError(str(exc)) from None
    except OSError as exc:  # the path itself is unusable: not a folder on the way, a name too long, a link loop
        raise ToolError(f"cannot {action} {shown}: {exc.strerror or exc}") from None


@tool(name="bash", args=BashArgs, app="files", needs_shell=True)
def bash(files: FileSurface, args: BashArgs) -> str:
    """Run a bash command in the sandbox's work dir and see its exit code and output."""
    if not files.has_shell:
        raise ToolError("bash needs a shell backend (backend=local or backend=docker)")
    return files.run(args.command)


@tool(name="read_file", args=PathArgs, app="files")
def read_file(files: FileSurface, args: PathArgs) -> str:
    """Read a text file."""
    path = _resolve(files, args.path)
    with _explained("read file", args.path, path):
        data, size = files.read(path)
    return file_text(data, size)


@tool(name="write_file", args=WriteArgs, app="files")
def write_file(files: FileSurface, args: WriteArgs) -> str:
    """Create or overwrite a text file."""
    path = _resolve(files, args.path)
    data = args.content.encode()
    with _explained("write file", args.path, path):
        files.write(path, data)
    return f"wrote {len(data)} bytes to {path}"


@tool(name="list_files", args=ListArgs, app="files")
def list_files(files: FileSurface, args: ListArgs) -> str:
    """List the files under a folder, with their permissions."""
    folder = _resolve(files, args.path)
    with _explained("list files", args.path, folder):
        return files.listing(folder)


class FilesApp(App):
    name = "files"
    state_model = FileSystem
    tools = (bash, read_file, write_file, list_files)
    # The state (envs.world.files.FileSystem) is the surface of the embedded backend; shell backends supply theirs.


APP = FilesApp()
