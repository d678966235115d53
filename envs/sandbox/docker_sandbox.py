"""A docker sandbox: one long-lived container, driven through its persistent shell server (envs/sandbox/
shell_server.py, one request per command over one attached `docker exec`) or, where the image cannot run it or
the provider is asked for the old path, by one `docker exec` per command (see envs/sandbox/docker.py for the
design), with the scripts of envs/sandbox/docker_scripts.py. Also the seed's plan and tar."""

from __future__ import annotations

import contextlib
import io
import posixpath
import socket
import stat
import tarfile
import threading
import time
from typing import Any, Protocol

from envs.sandbox.base import (
    ExecResult,
    NotRegularFileError,
    Sandbox,
    SandboxError,
    SandboxSpec,
)
from envs.sandbox.docker_scripts import (
    HOUSEKEEPING,
    KILL_ALL,
    NUL_REJECTED,
    READ_FILE,
    SCRATCH_DIRS,
    SERVER_WRAPPER,
    WRAPPER,
    WRITE_FILE,
)
from envs.sandbox.docker_shell import ShellChannel, ShellLost
from envs.world.files import MAX_READBACK_BYTES, FileEntry, PathEscapeError, file_entry_from_bytes
from envs.world.paths import is_under

AGENT_UID = 1000
AGENT_USER = f"{AGENT_UID}:{AGENT_UID}"
CLIENT_GRACE_S = 10.0  # client-side bound beyond the in-container timeout
HOUSEKEEPING_TIMEOUT_S = 30.0
CHUNK = 65536


def roots_of(spec: SandboxSpec) -> list[str]:
    return [spec.workdir, *spec.extra_roots]


def docker_sdk() -> Any:
    import docker  # lazily: the package imports without the SDK

    return docker


class SandboxOwner(Protocol):
    """What a sandbox needs of the provider that made it (DockerProvider; named here so this module does not
    import the provider, which imports it)."""

    @property
    def client(self) -> Any: ...  # the engine's docker client

    def forget(self, sandbox: DockerSandbox) -> None: ...


class DockerSandbox(Sandbox):
    def __init__(self, provider: SandboxOwner, spec: SandboxSpec, container: Any, volumes: list[str]) -> None:
        self.spec = spec
        self._provider = provider
        self._api = provider.client.api
        self.container = container
        self.volumes = volumes  # one per root, in the order of `roots`
        self.broken = False
        self._closed = False
        self._env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": spec.workdir, "LANG": "C.UTF-8",
                     "USER": "agent"}
        self._shell: ShellChannel | None = None  # None: one `docker exec` per command (the old path)
        self._files: dict[str, FileEntry] | None = None  # the last read-back, patched with what changed since
        self._changed = True  # the shell server reported changes the read-back has not fetched yet

    @property
    def roots(self) -> list[str]:
        return roots_of(self.spec)

    @property
    def persistent(self) -> bool:
        """Whether commands go through the persistent shell server."""
        return self._shell is not None

    def start_shell(self) -> None:
        """Start the shell server (the container must be running). Raises ShellLost where the image cannot run
        it (no python3); the sandbox then keeps to one exec per command."""
        config = {"uid": AGENT_UID, "roots": self.roots, "env": self._env, "readback_bytes": MAX_READBACK_BYTES}
        self._shell = ShellChannel(self._api, self.container.id, config, self._env)

    # ---- the interface ------------------------------------------------------------------------
    def exec(self, command: str, timeout_s: float | None = None, stdin: bytes | None = None) -> ExecResult:
        if "\0" in command:  # bash would drop it and run a different command
            return ExecResult(exit_code=2, stderr=NUL_REJECTED)
        limits = self.spec.limits
        timeout = max(timeout_s or limits.timeout_s, 0.001)
        started = time.perf_counter()
        script = command.encode("utf-8", errors="replace")  # a lone surrogate cannot be sent as it is
        if self._shell is not None:
            argv = ["bash", "-c", SERVER_WRAPPER, "bash", str(limits.memory_mb * 1024), str(limits.disk_mb * 1024)]
            reply, out, err = self._serve(argv, stdin or b"", timeout, limits.output_bytes, self.spec.workdir,
                                          script=script)
            return ExecResult(exit_code=reply["code"], stdout=out.decode("utf-8", errors="replace"),
                              stderr=err.decode("utf-8", errors="replace"), timed_out=reply["timed_out"],
                              output_truncated=reply["truncated"], duration_s=time.perf_counter() - started)
        argv = ["bash", "-c", WRAPPER, "sandbox", f"{timeout:.3f}", str(limits.memory_mb * 1024),
                str(limits.disk_mb * 1024), str(len(script))]
        code, out, err, truncated, client_timeout = self._run(argv, AGENT_USER, script + (stdin or b""),
                                                              timeout + CLIENT_GRACE_S, self.spec.workdir)
        elapsed = time.perf_counter() - started
        if client_timeout:
            self._kill_agent_processes()
        # `timeout -s KILL` kills its own process group too, so a timeout shows as 137 after >= timeout.
        timed_out = client_timeout or (code == 137 and elapsed >= timeout)
        return ExecResult(exit_code=None if timed_out else code, stdout=out.decode("utf-8", errors="replace"),
                          stderr=err.decode("utf-8", errors="replace"), timed_out=timed_out,
                          output_truncated=truncated, duration_s=elapsed)

    def read_file(self, path: str) -> bytes:
        self._check_path(path)
        # A file is at most its root's size, so the whole of it comes back.
        return self._file_tool(READ_FILE, path, None, self.spec.limits.disk_mb << 20)

    def write_file(self, path: str, data: bytes) -> None:
        self._check_path(path)
        self._file_tool(WRITE_FILE, path, data, self.spec.limits.output_bytes)

    def _file_tool(self, script: str, path: str, stdin: bytes | None, cap: int) -> bytes:
        """Run READ_FILE or WRITE_FILE on `path`; its stdout, or the error its exit code stands for."""
        limits = self.spec.limits
        argv = ["bash", "-c", script, "file-tool", path, *self.roots]
        if self._shell is not None:
            reply, out, err = self._serve(argv, stdin, limits.timeout_s, cap, "/", scan=script == WRITE_FILE)
            code, truncated, timed_out = reply["code"], reply["truncated"], reply["timed_out"]
        else:
            code, out, err, truncated, timed_out = self._run(argv, AGENT_USER, stdin,
                                                             limits.timeout_s + CLIENT_GRACE_S, "/", cap=cap)
            if timed_out:
                self._kill_agent_processes()
        reason = err.decode("utf-8", errors="replace").strip()
        if timed_out:
            raise FileNotFoundError(f"{path}: no answer within {limits.timeout_s:.0f}s")
        if code == 0 and not truncated:
            return out
        if code == 4:
            raise PathEscapeError(f"{path!r} leads outside the sandbox's folders ({', '.join(self.roots)})")
        if code == 5 or "Is a directory" in reason:
            raise IsADirectoryError(path)
        if code == 6:
            raise NotRegularFileError(path)
        if "Permission denied" in reason:
            raise PermissionError(path)
        raise FileNotFoundError(f"{path}: {reason.rpartition(': ')[2] or 'could not be read'}")

    def snapshot_files(self) -> dict[str, FileEntry]:
        """Every regular file, all of them: the roots hold at most MAX_FILES_PER_ROOT (their tmpfs's inodes).
        With the shell server, only what changed since the last read-back is fetched and patched in."""
        self._require_open()
        if self._shell is None:
            return self._archive_snapshot()
        if self._files is None or self._changed:
            reply, blobs = self._request({"op": "files", "full": self._files is None}, (), HOUSEKEEPING_TIMEOUT_S)
            files = {} if reply["full"] else self._files
            for path in reply["removed"]:
                files.pop(path, None)
            for (path, mode, size, digest), head in zip(reply["files"], blobs, strict=True):
                files[path] = FileEntry(content=head.decode("utf-8", errors="replace"), mode=mode, size=size,
                                        sha256=digest, truncated=size > MAX_READBACK_BYTES)
            self._files = dict(sorted(files.items())) if reply["files"] else files
            self._changed = False
        return dict(self._files)

    def _archive_snapshot(self) -> dict[str, FileEntry]:
        """The old path: every root through the engine's archive API."""
        files: dict[str, FileEntry] = {}
        for root in self.roots:
            archive = self._get_archive(root)
            parent = posixpath.dirname(root.rstrip("/")) or "/"
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
                for member in tar:
                    if not (member.isreg() or member.islnk()):
                        continue
                    try:
                        fh = tar.extractfile(member)  # a hard link yields its target's content
                    except (KeyError, tarfile.TarError):
                        continue
                    if fh is None:
                        continue
                    files[posixpath.join(parent, member.name)] = file_entry_from_bytes(fh.read(),
                                                                                       stat.S_IMODE(member.mode))
        return dict(sorted(files.items()))

    def reset(self, files: dict[str, FileEntry]) -> None:
        self._require_open()
        seed: dict[str, tuple[str, FileEntry]] = {}
        for path, entry in files.items():
            try:
                root = self._check_path(path)
            except PathEscapeError as exc:
                raise SandboxError(f"could not reset the work dir: {exc}") from exc
            seed[posixpath.normpath(path)] = (root, entry)
        if self._shell is not None:
            folders, in_order = _seed_plan(seed)
            header = {"op": "reset", "scratch": list(SCRATCH_DIRS), "folders": folders,
                      "files": [[path, entry.mode] for path, entry in in_order], "timeout": HOUSEKEEPING_TIMEOUT_S}
            reply, blobs = self._request(header, tuple(entry.data() for _, entry in in_order),
                                         HOUSEKEEPING_TIMEOUT_S + CLIENT_GRACE_S)
            code, err, client_timeout = reply["code"], blobs[1], reply["timed_out"] or not reply["clean"]
            self._files = None  # read back whole on the next snapshot
        else:
            code, _out, err, _trunc, client_timeout = self._run(
                ["bash", "-c", HOUSEKEEPING, "reset", "1" if seed else "0", *self.roots], AGENT_USER,
                _seed_tar(seed) if seed else None, HOUSEKEEPING_TIMEOUT_S, "/")
        if client_timeout or code != 0:
            self.broken = True
            raise SandboxError(f"could not reset the sandbox: {err.decode(errors='replace').strip() or code}")

    def alive(self) -> bool:
        """Whether the sandbox still answers (a pooled one is checked before it is handed out)."""
        if self._closed or self.broken:
            return False
        if self._shell is None:
            try:
                self.container.reload()
            except Exception:  # noqa: BLE001 - any failure means the container is not usable
                return False
            return self.container.status == "running"
        try:
            self._request({"op": "ping"}, (), HOUSEKEEPING_TIMEOUT_S)
        except SandboxError:
            return False
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._provider.forget(self)
        if self._shell is not None:
            self._shell.close()
        with contextlib.suppress(Exception):
            self.container.remove(force=True)
        for volume in self.volumes:
            with contextlib.suppress(Exception):
                self._provider.client.volumes.get(volume).remove(force=True)

    # ---- the shell server -------------------------------------------------------------------------
    def _serve(self, argv: list[str], stdin: bytes | None, timeout_s: float, cap: int, workdir: str,
               scan: bool = True, script: bytes | None = None) -> tuple[dict[str, Any], bytes, bytes]:
        """Run argv as the agent through the shell server, fed `stdin` (None: no input at all), `script` in the
        memory file @SCRIPT@ names: (its reply, stdout, stderr). Every process of the agent is ended with it; with
        `scan`, the reply says whether any file changed."""
        blobs = (stdin or b"",) if script is None else (script, stdin or b"")
        reply, blobs = self._request({"op": "run", "argv": argv, "timeout": timeout_s, "cap": cap, "cwd": workdir,
                                      "scan": scan, "stdin": stdin is not None, "script": script is not None},
                                     blobs, timeout_s + CLIENT_GRACE_S)
        if not reply["clean"]:  # a process of the agent survived every kill: nothing after it can be trusted
            self.broken = True
            raise SandboxError(f"could not end the processes of a command in {self.container.name}")
        if reply.get("changed") or reply.get("removed"):
            self._changed = True
        return reply, blobs[0], blobs[1]

    def _request(self, header: dict[str, Any], blobs: tuple[bytes, ...],
                 bound_s: float) -> tuple[dict[str, Any], list[bytes]]:
        self._require_open()
        assert self._shell is not None
        try:
            return self._shell.request(header, blobs, bound_s)
        except ShellLost as exc:
            self.broken = True
            raise SandboxError(f"lost the shell of the container {self.container.name}: {exc}") from exc

    # ---- engine calls ---------------------------------------------------------------------------
    def _run(self, argv: list[str], user: str, stdin: bytes | None, bound_s: float, workdir: str,
             cap: int | None = None) -> tuple[int | None, bytes, bytes, bool, bool]:
        """Run argv in the container; (exit code, stdout, stderr, truncated, client-side timeout).
        Output past `cap` (default limits.output_bytes) per stream is read and dropped."""
        self._require_open()
        docker = docker_sdk()
        cap = self.spec.limits.output_bytes if cap is None else cap
        deadline = time.monotonic() + bound_s
        try:
            exec_id = self._api.exec_create(self.container.id, argv, stdin=stdin is not None, user=user,
                                            environment=self._env, workdir=workdir)["Id"]
            sock = self._api.exec_start(exec_id, socket=True)
        except (docker.errors.DockerException, OSError) as exc:
            self.broken = True
            raise SandboxError(f"the container {self.container.name} failed to run a command: {exc}") from exc
        raw = getattr(sock, "_sock", sock)  # socket.SocketIO over a unix socket: its socket
        response = getattr(sock, "_response", None)
        # Read through the HTTP response's buffered reader: it may already hold the first frames.
        reader = response.raw._fp.fp if response is not None else sock
        buffers = {1: bytearray(), 2: bytearray()}
        truncated = False
        client_timeout = False
        writer = None
        try:
            if stdin is not None:
                writer = threading.Thread(target=_send_stdin, args=(raw, stdin), daemon=True)
                writer.start()
            pending = bytearray()
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    client_timeout = True
                    break
                raw.settimeout(remaining)
                try:
                    chunk = reader.read1(CHUNK) if hasattr(reader, "read1") else reader.read(CHUNK)
                except TimeoutError:
                    client_timeout = True
                    break
                if not chunk:
                    break
                pending += chunk
                while len(pending) >= 8:
                    size = int.from_bytes(pending[4:8], "big")
                    if len(pending) < 8 + size:
                        break
                    buf = buffers.get(pending[0], buffers[2])
                    room = cap - len(buf)
                    if room > 0:
                        buf += pending[8:8 + min(size, room)]
                    if size > room:
                        truncated = True
                    del pending[:8 + size]
        except OSError as exc:
            self.broken = True
            raise SandboxError(f"lost the connection to the container {self.container.name}: {exc}") from exc
        finally:
            with contextlib.suppress(Exception):
                sock.close()
            if response is not None:
                with contextlib.suppress(Exception):
                    response.close()
            if writer is not None:
                writer.join(timeout=1)
        code = None if client_timeout else self._exit_code(exec_id, deadline)
        return code, bytes(buffers[1]), bytes(buffers[2]), truncated, client_timeout

    def _exit_code(self, exec_id: str, deadline: float) -> int | None:
        docker = docker_sdk()
        delay = 0.002
        while True:
            try:
                info = self._api.exec_inspect(exec_id)
            except (docker.errors.DockerException, OSError) as exc:
                self.broken = True
                raise SandboxError(f"the engine lost the command in {self.container.name}: {exc}") from exc
            if not info.get("Running"):
                return info.get("ExitCode")
            if time.monotonic() > deadline:
                return None
            time.sleep(delay)  # the stream ended; the engine records the exit a moment later
            delay = min(delay * 2, 0.1)

    def _kill_agent_processes(self) -> None:
        code, *_ = self._run(["bash", "-c", KILL_ALL], AGENT_USER, None, HOUSEKEEPING_TIMEOUT_S, "/")
        if code is None:
            self.broken = True

    def _get_archive(self, path: str) -> bytes:
        docker = docker_sdk()
        try:
            stream, _stat = self.container.get_archive(path)
            return b"".join(stream)
        except docker.errors.NotFound as exc:
            if "No such container" in str(exc):
                self.broken = True
                raise SandboxError(f"the container {self.container.name} is gone") from exc
            raise FileNotFoundError(path) from exc
        except (docker.errors.DockerException, OSError) as exc:
            self.broken = True
            raise SandboxError(f"could not read {path} from {self.container.name}: {exc}") from exc

    # ---- helpers ------------------------------------------------------------------------------
    def _require_open(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox is closed")

    def _check_path(self, path: str) -> str:
        """The root `path` lies in; PathEscapeError if it lies in none."""
        normal = posixpath.normpath(path)
        for root in self.roots:
            if is_under(normal, root):
                return root
        raise PathEscapeError(f"{path!r} is outside the sandbox's folders ({', '.join(self.roots)})")


def _send_stdin(raw: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        raw.sendall(data)
    with contextlib.suppress(OSError):
        raw.shutdown(socket.SHUT_WR)


def _seed_plan(seed: dict[str, tuple[str, FileEntry]]) -> tuple[list[str], list[tuple[str, FileEntry]]]:
    """The folders to make (0755) between a root and its files, parents first (never the root or anything above
    it), and the files in order."""
    folders: list[str] = []
    made: set[str] = set()
    for path in sorted(seed):
        root = seed[path][0]
        folder = posixpath.dirname(path)
        missing = []
        while folder != root and folder not in made:
            missing.append(folder)
            folder = posixpath.dirname(folder)
        for name in reversed(missing):
            made.add(name)
            folders.append(name)
    return folders, [(path, seed[path][1]) for path in sorted(seed)]


def _seed_tar(seed: dict[str, tuple[str, FileEntry]]) -> bytes:
    """A tar, relative to /, of `_seed_plan(seed)`: its folders (0755), then its files with their modes."""
    buf = io.BytesIO()
    now = time.time()
    folders, files = _seed_plan(seed)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in folders:
            tar.addfile(tar_info(name.lstrip("/"), tarfile.DIRTYPE, 0o755, now))
        for path, entry in files:
            data = entry.data()
            info = tar_info(path.lstrip("/"), tarfile.REGTYPE, entry.mode, now)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tar_info(name: str, kind: bytes, mode: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, mtime
    info.uid = info.gid = AGENT_UID
    info.uname = info.gname = "agent"
    return info
