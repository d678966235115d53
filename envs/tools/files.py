"""File and shell tools. On the sim backend the file tools work on the world's files in memory; shell
backends serve all of them from a real sandbox (see envs/backends/shell.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from envs.tools.base import ToolError, tool
from envs.world import FileEntry, FileSystem, PathEscapeError, World


class BashArgs(BaseModel):
    command: str = Field(min_length=1, description="A bash command, run in the work dir.")


class PathArgs(BaseModel):
    path: str = Field(min_length=1, description="File path, relative to the work dir or absolute.")


class WriteArgs(BaseModel):
    path: str = Field(min_length=1, description="File path, relative to the work dir or absolute.")
    content: str = Field(description="The full new content of the file.")


class ListArgs(BaseModel):
    path: str = Field(default=".", description="Folder to list, relative to the work dir.")


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
    return files.files[path].data().decode("utf-8", errors="replace")


@tool(name="write_file", args=WriteArgs, app="files")
def write_file(world: World, args: WriteArgs) -> str:
    """Create or overwrite a text file."""
    files = _files(world)
    path = _resolve(files, args.path)
    existing = files.files.get(path)
    if existing is not None and existing.read_only:
        raise ToolError(f"permission denied: {args.path} is read-only")
    files.files[path] = FileEntry(content=args.content, mode=existing.mode if existing else 0o644)
    return f"wrote {len(args.content.encode())} bytes to {path}"


@tool(name="list_files", args=ListArgs, app="files")
def list_files(world: World, args: ListArgs) -> str:
    """List the files under a folder, with their permissions."""
    files = _files(world)
    folder = _resolve(files, args.path).rstrip("/") + "/"
    rows = [f"{oct(e.mode)[2:]:>4} {p}" for p, e in sorted(files.files.items()) if p.startswith(folder)]
    return "\n".join(rows) or "(empty)"
