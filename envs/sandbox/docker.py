"""The `docker` provider: one long-lived container per sandbox, kept in a warm pool per image.

Same contract as the `local` provider: no network, no host files, an unprivileged agent (uid 1000), a
size-capped work dir, memory/pids/cpu limits, a per-command timeout, capped output, and nothing the agent
starts outlives its command (the command wrapper kills every uid-1000 process when the command ends).

How it is put together, and why:
- The container runs `sleep infinity` under docker-init (which reaps orphans) with `--network none`, all
  capabilities dropped and no-new-privileges. Every command is a `docker exec` as uid 1000.
- Root in the container has no capabilities, so it cannot kill the agent's processes or read its files.
  Reset therefore runs as uid 1000 (which owns everything under the roots) in one exec: kill, empty, and
  unpack the seed files from a tar on stdin (one exec rather than an exec plus a put_archive: ~70 ms instead
  of ~120 ms per reset here). Reading files back goes through the engine's archive API: the daemon reads
  them whatever their mode, and a symlink comes back as a link, never followed.
- The work dir is a tmpfs *volume* (`size=<disk_mb>m,uid=1000`), not a `--tmpfs` mount: the archive API
  does not see `--tmpfs` mounts, but it does see volumes. /tmp is a small `--tmpfs`, cleared on reset.
- Without extra roots the rootfs is read-only. With extra roots (e.g. /usr/local/bin of an imported image)
  the rootfs is writable and each extra root is a plain folder of the image, handed to uid 1000 when the
  container starts: the archive API sees no `--tmpfs` mount and writes nothing (not even that hand-over)
  into a read-only rootfs outside volumes, and the agent must be able to change its tools there. The agent
  still writes only where uid 1000 may (its roots and the world-writable scratch dirs, which reset clears);
  that writable layer is not size-capped, unlike the work dir.
- Containers and volumes carry labels (owner pid, host); a provider removes those whose owner died (a killed
  run), and `shutdown()` (at interpreter exit; SIGTERM is turned into KeyboardInterrupt when nothing else
  handles it, so the runner's Ctrl-C path runs) removes its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import posixpath
import signal
import socket
import stat
import tarfile
import threading
import time
import uuid
from typing import Any

from envs.sandbox.base import (
    ExecResult,
    Sandbox,
    SandboxError,
    SandboxProvider,
    SandboxSpec,
    SandboxUnavailable,
    register_provider,
)
from envs.world.files import FileEntry, PathEscapeError, file_entry_from_bytes

AGENT_UID = 1000
AGENT_USER = f"{AGENT_UID}:{AGENT_UID}"
MAX_FILES = 5000
POOL_SIZE = 4  # idle containers kept per spec
TMP_MB = 16  # /tmp and /dev/shm
CLIENT_GRACE_S = 10.0  # client-side bound beyond the in-container timeout
HOUSEKEEPING_TIMEOUT_S = 30.0
CHUNK = 65536
LABEL = "safety-sandbox"
LABEL_OWNER = "safety-sandbox.owner-pid"
LABEL_HOST = "safety-sandbox.host"
SCRATCH_DIRS = ("/tmp", "/dev/shm", "/var/tmp", "/run/lock")

# The command runs under coreutils `timeout` (which kills its process group); then every uid-1000 process
# left (background jobs, setsid escapes, a fork bomb's children) is killed, as a fresh bwrap run would do.
# The wrapper's own stderr goes to /dev/null so bash's "Killed" job notice stays out of the output. The
# memory and file-size ulimits are the local provider's (a big allocation fails with ENOMEM rather than
# meeting the cgroup's OOM killer); there is no `ulimit -u`: uid 1000 is shared by every container on the
# host, so a per-user process cap would couple them (the container's pids limit applies instead).
# kill(-1) also reports success when the only other processes are root's (signalled in vain), so the loop
# ends when /proc shows no other process of ours; repeating catches children forked during a kill.
KILL_ALL = ('for ((i = 0; i < 200; i++)); do kill -9 -1 2>/dev/null; left=; '
            'for p in /proc/[1-9]*; do [ "${p#/proc/}" != "$$" ] && [ -O "$p" ] && { left=1; break; }; done; '
            '[ -n "$left" ] || break; done')
WRAPPER = ('exec 3>&2 2>/dev/null; ulimit -v "$2"; ulimit -f "$3"; timeout -s KILL "$1" bash -c "$4" 2>&3 3>&-; '
           f'rc=$?; {KILL_ALL}; exit $rc')
# Reset, in one exec as uid 1000 (which owns everything under the roots): end every process, empty the
# scratch dirs and the roots (making the agent's read-only folders writable first), then unpack the seed
# files from stdin (`$1` says whether there are any), so they belong to the agent with their modes.
HOUSEKEEPING = KILL_ALL + """
shopt -s nullglob dotglob
seed=$1; shift
for d in """ + " ".join(SCRATCH_DIRS) + """ "$@"; do
  [ -d "$d" ] && [ ! -L "$d" ] || continue
  entries=("$d"/*)
  if ((${#entries[@]})); then
    chmod -R u+rwX -- "${entries[@]}" 2>/dev/null
    rm -rf -- "${entries[@]}" 2>/dev/null
  fi
done
chmod 0755 -- "$@"
for d in "$@"; do
  entries=("$d"/*)
  if ((${#entries[@]})); then echo "could not empty $d" >&2; exit 1; fi
done
if [ "$seed" = 1 ]; then exec tar -x -p -m -f - -C /; fi
"""


def _docker() -> Any:
    import docker  # lazily: the package imports without the SDK

    return docker


class DockerSandbox(Sandbox):
    def __init__(self, provider: DockerProvider, spec: SandboxSpec, container: Any, volume: str) -> None:
        self.spec = spec
        self._provider = provider
        self._api = provider.client.api
        self.container = container
        self.volume = volume
        self.broken = False
        self._closed = False
        self._env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": spec.workdir, "LANG": "C.UTF-8",
                     "USER": "agent"}

    @property
    def roots(self) -> list[str]:
        return [self.spec.workdir, *self.spec.extra_roots]

    # ---- the interface ------------------------------------------------------------------------
    def exec(self, command: str, timeout_s: float | None = None, stdin: bytes | None = None) -> ExecResult:
        limits = self.spec.limits
        timeout = max(timeout_s or limits.timeout_s, 0.001)
        started = time.perf_counter()
        argv = ["bash", "-c", WRAPPER, "sandbox", f"{timeout:.3f}", str(limits.memory_mb * 1024),
                str(limits.disk_mb * 1024), command]
        code, out, err, truncated, client_timeout = self._run(argv, AGENT_USER, stdin, timeout + CLIENT_GRACE_S,
                                                              self.spec.workdir)
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
        member, data = self._get_one(path)
        if member.isdir():
            raise IsADirectoryError(path)
        if not member.isreg():
            raise FileNotFoundError(path)  # a symlink (never followed out of the sandbox) or a special file
        return data

    def write_file(self, path: str, data: bytes) -> None:
        self._check_path(path)
        result = self.exec(f"cat > {_quote(path)}", stdin=data)
        if result.exit_code != 0:
            if "Permission denied" in result.stderr:
                raise PermissionError(path)
            if "Is a directory" in result.stderr:
                raise IsADirectoryError(path)
            raise FileNotFoundError(f"{path}: {result.stderr.strip()}")

    def snapshot_files(self) -> dict[str, FileEntry]:
        self._require_open()
        files: dict[str, FileEntry] = {}
        for root in self.roots:
            if len(files) >= MAX_FILES:
                break
            archive = self._get_archive(root)
            parent = posixpath.dirname(root.rstrip("/")) or "/"
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
                for member in tar:
                    if not (member.isreg() or member.islnk()):
                        continue
                    if len(files) >= MAX_FILES:
                        break
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
        code, _out, err, _trunc, client_timeout = self._run(
            ["bash", "-c", HOUSEKEEPING, "reset", "1" if seed else "0", *self.roots], AGENT_USER,
            _seed_tar(seed) if seed else None, HOUSEKEEPING_TIMEOUT_S, "/")
        if client_timeout or code != 0:
            self.broken = True
            raise SandboxError(f"could not reset the sandbox: {err.decode(errors='replace').strip() or code}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._provider.forget(self)
        with contextlib.suppress(Exception):
            self.container.remove(force=True)
        with contextlib.suppress(Exception):
            self._provider.client.volumes.get(self.volume).remove(force=True)

    # ---- engine calls ---------------------------------------------------------------------------
    def _run(self, argv: list[str], user: str, stdin: bytes | None, bound_s: float,
             workdir: str) -> tuple[int | None, bytes, bytes, bool, bool]:
        """Run argv in the container; (exit code, stdout, stderr, truncated, client-side timeout).
        Output past limits.output_bytes per stream is read and dropped."""
        self._require_open()
        docker = _docker()
        cap = self.spec.limits.output_bytes
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
        docker = _docker()
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
        docker = _docker()
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

    def _get_one(self, path: str) -> tuple[tarfile.TarInfo, bytes]:
        with tarfile.open(fileobj=io.BytesIO(self._get_archive(path)), mode="r:") as tar:
            member = tar.next()
            if member is None:
                raise FileNotFoundError(path)
            fh = tar.extractfile(member) if member.isreg() else None
            return member, fh.read() if fh is not None else b""

    def _put_archive(self, path: str, data: bytes) -> None:
        docker = _docker()
        try:
            self.container.put_archive(path, data)
        except (docker.errors.DockerException, OSError) as exc:
            self.broken = True
            raise SandboxError(f"could not write files into {self.container.name}:{path}: {exc}") from exc

    # ---- helpers ------------------------------------------------------------------------------
    def _require_open(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox is closed")

    def _check_path(self, path: str) -> str:
        """The root `path` lies in; PathEscapeError if it lies in none."""
        normal = posixpath.normpath(path)
        for root in self.roots:
            if normal == root or normal.startswith(root.rstrip("/") + "/"):
                return root
        raise PathEscapeError(f"{path!r} is outside the sandbox's folders ({', '.join(self.roots)})")


def _send_stdin(raw: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        raw.sendall(data)
    with contextlib.suppress(OSError):
        raw.shutdown(socket.SHUT_WR)


def _seed_tar(seed: dict[str, tuple[str, FileEntry]]) -> bytes:
    """A tar, relative to /, of the files by absolute path (with their root), plus 0755 entries for the
    folders between a root and its files (never the root or anything above it)."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folders: set[str] = set()
        for path in sorted(seed):
            root, entry = seed[path]
            folder = posixpath.dirname(path)
            missing = []
            while folder != root and folder not in folders:
                missing.append(folder)
                folder = posixpath.dirname(folder)
            for name in reversed(missing):
                folders.add(name)
                tar.addfile(_tar_info(name.lstrip("/"), tarfile.DIRTYPE, 0o755, now))
            data = entry.data()
            info = _tar_info(path.lstrip("/"), tarfile.REGTYPE, entry.mode, now)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _tar_info(name: str, kind: bytes, mode: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, mtime
    info.uid = info.gid = AGENT_UID
    info.uname = info.gname = "agent"
    return info


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DockerProvider(SandboxProvider):
    name = "docker"

    def __init__(self) -> None:
        self._client: Any = None
        self._base_image: str | None = None
        self._images: set[str] = set()  # images checked to be on the engine
        self._lock = threading.Lock()
        self._idle: dict[SandboxSpec, list[DockerSandbox]] = {}
        self._live: set[DockerSandbox] = set()
        self._closed = False
        self._host = socket.gethostname()

    # ---- the engine ---------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
        return self._client

    def _connect(self) -> Any:
        from sandbox_images.engine import EngineUnavailable, connect

        try:
            client = connect()
        except EngineUnavailable as exc:
            raise SandboxUnavailable(str(exc)) from exc
        _install_sigterm_handler()
        self._reap_orphans(client)
        return client

    def _labels(self) -> dict[str, str]:
        return {LABEL: "1", LABEL_OWNER: str(os.getpid()), LABEL_HOST: self._host}

    def _reap_orphans(self, client: Any) -> None:
        """Remove containers and volumes of runs on this host whose process is gone (SIGKILL, crash)."""
        filters = {"label": [f"{LABEL}=1", f"{LABEL_HOST}={self._host}"]}
        with contextlib.suppress(Exception):
            for container in client.containers.list(all=True, filters=filters):
                owner = container.labels.get(LABEL_OWNER, "")
                if owner.isdigit() and not _alive(int(owner)):
                    with contextlib.suppress(Exception):
                        container.remove(force=True)
            for volume in client.volumes.list(filters=filters):
                owner = (volume.attrs.get("Labels") or {}).get(LABEL_OWNER, "")
                if owner.isdigit() and not _alive(int(owner)):
                    with contextlib.suppress(Exception):
                        volume.remove(force=True)

    def _image(self, spec: SandboxSpec) -> str:
        if spec.image is None:
            if self._base_image is None:
                from sandbox_images.base_image import BuildError, ensure_base_image

                try:
                    self._base_image = ensure_base_image(self.client)
                except BuildError as exc:
                    raise SandboxUnavailable(f"could not build the base sandbox image: {exc}") from exc
            return self._base_image
        if spec.image in self._images or spec.image == self._base_image:
            return spec.image
        docker = _docker()
        from sandbox_images.derived import DerivedImageError, ensure_derived_image, recipe_for

        try:
            if recipe_for(spec.image) is not None:  # an imported scenario's image: built here at first use
                ensure_derived_image(self.client, spec.image)
            else:
                self.client.images.get(spec.image)
        except docker.errors.ImageNotFound as exc:
            raise SandboxUnavailable(f"image {spec.image!r} is not on this engine; build it locally "
                                     "(there is no registry to pull from)") from exc
        except DerivedImageError as exc:
            raise SandboxError(f"could not build the sandbox image: {exc}") from exc
        except (docker.errors.DockerException, OSError) as exc:
            raise SandboxError(f"the Docker engine failed: {exc}") from exc
        self._images.add(spec.image)
        return spec.image

    # ---- the interface ------------------------------------------------------------------------
    def check(self) -> None:
        self._image(SandboxSpec())

    def acquire(self, spec: SandboxSpec) -> Sandbox:
        spec = dataclasses.replace(spec, image=self._image(spec))
        while True:
            with self._lock:
                idle = self._idle.get(spec)
                sandbox = idle.pop() if idle else None
            if sandbox is None:
                return self.create(spec)
            if self._running(sandbox):
                return sandbox
            sandbox.close()

    def release(self, sandbox: Sandbox) -> None:
        if not isinstance(sandbox, DockerSandbox) or sandbox.broken:
            sandbox.close()
            return
        with self._lock:
            idle = self._idle.setdefault(sandbox.spec, [])
            if not self._closed and sandbox in self._live and sandbox not in idle and len(idle) < POOL_SIZE:
                idle.append(sandbox)
                return
        sandbox.close()

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            sandboxes = list(self._live)
            self._idle.clear()
        if not sandboxes:
            return
        with _signals_held():
            for sandbox in sandboxes:
                sandbox.close()

    # ---- containers ---------------------------------------------------------------------------
    def create(self, spec: SandboxSpec) -> DockerSandbox:
        """A new container for `spec` outside the pool (the caller closes or releases it)."""
        docker = _docker()
        image = self._image(spec)
        spec = dataclasses.replace(spec, image=image)
        limits = spec.limits
        name = f"safety-sandbox-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        labels = self._labels()
        container = None
        try:
            self.client.volumes.create(name=name, driver="local", labels=labels, driver_opts={
                "type": "tmpfs", "device": "tmpfs",
                "o": f"size={limits.disk_mb}m,uid={AGENT_UID},gid={AGENT_UID},mode=0755"})
            container = self.client.containers.create(
                image, ["sleep", "infinity"], name=name, hostname="sandbox", labels=labels, init=True,
                network_mode="none", cap_drop=["ALL"], security_opt=["no-new-privileges"],
                mem_limit=f"{limits.memory_mb}m", memswap_limit=f"{limits.memory_mb}m",
                pids_limit=limits.pids, nano_cpus=int(limits.cpus * 1e9),
                read_only=not spec.extra_roots, shm_size=f"{TMP_MB}m",
                tmpfs={"/tmp": f"size={TMP_MB}m,mode=1777"},
                mounts=[docker.types.Mount(spec.workdir, name, type="volume", no_copy=True)],
                environment={"LANG": "C.UTF-8"}, working_dir=spec.workdir)
            sandbox = DockerSandbox(self, spec, container, name)
            with self._lock:
                self._live.add(sandbox)
            container.start()
            for root in spec.extra_roots:  # hand the extra roots to the agent (the daemon can chown)
                sandbox._put_archive("/", _adopt_tar(root))
            return sandbox
        except (docker.errors.DockerException, OSError, SandboxError) as exc:
            with contextlib.suppress(Exception):
                if container is not None:
                    container.remove(force=True)
            with contextlib.suppress(Exception):
                self.client.volumes.get(name).remove(force=True)
            with self._lock:
                self._live = {s for s in self._live if s.volume != name}
            raise SandboxError(f"could not start a container from {image}: {exc}") from exc

    def forget(self, sandbox: DockerSandbox) -> None:
        with self._lock:
            self._live.discard(sandbox)
            idle = self._idle.get(sandbox.spec)
            if idle and sandbox in idle:
                idle.remove(sandbox)

    def _running(self, sandbox: DockerSandbox) -> bool:
        try:
            sandbox.container.reload()
        except Exception:  # noqa: BLE001 - any failure means the container is not usable
            return False
        return sandbox.container.status == "running"


def _adopt_tar(root: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.addfile(_tar_info(root.strip("/"), tarfile.DIRTYPE, 0o755, time.time()))
    return buf.getvalue()


def _install_sigterm_handler() -> None:
    """Turn SIGTERM into KeyboardInterrupt (the runner's Ctrl-C path: finished episodes are kept, then the
    atexit hook removes the containers). Left alone where the program set its own handler."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _signals_held():
    """Keep Ctrl-C/SIGTERM from cutting the removal of containers short (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        yield
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(Exception):
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


register_provider("docker")(DockerProvider)
