"""The `docker` provider: one long-lived container per sandbox, kept in a warm pool per image.

Same contract as the `local` provider: no network, no host files, an unprivileged agent (uid 1000), a
size-capped work dir, memory/pids/cpu limits, a per-command timeout, capped output, and nothing the agent
starts outlives its command (every uid-1000 process is killed when the command ends).

How it is put together, and why:
- The container runs `sleep infinity` under docker-init (which reaps orphans) with `--network none`, no-new-privileges,
  a private IPC namespace and a read-only rootfs.
- Commands go through a persistent shell server (envs/sandbox/shell_server.py): one `docker exec -i` as the
  container's root, started with the container, answering one request per command over its attached stream, so a
  command costs no engine round trip (an exec per command cost ~90-130 ms here, at the engine's own floor). It
  starts each command as uid 1000, ends every process of the agent after it, and says in the same reply which
  files changed; their contents are fetched only when the world is read, and only theirs.
- Capabilities: all are dropped but the four the server needs: SETUID/SETGID (to become the agent), KILL (to end
  the agent's processes) and DAC_READ_SEARCH (to read back what the agent locked away, as the engine's archive API
  did). Only root holds them: uid 1000 processes have none, and no-new-privileges keeps setuid files and file
  capabilities from giving any back; the agent cannot signal, ptrace or open the pipes of a root process.
- Where the image cannot run the server (no python3), or the provider is made with shell="exec" (the old path,
  kept for the benchmark), every command is its own `docker exec` as uid 1000 and all capabilities are dropped.
- Reset runs as uid 1000 (which owns everything under the roots) in one request: end every process, empty, and
  unpack the seed files from a tar on stdin. The agent's own file tools (read_file, write_file) run as uid 1000,
  with its rights, and refuse what links lead out of the roots.
- A command travels on stdin ahead of its own input, never as an argument, so its size is not bounded by the
  128 KiB Linux allows one argument (see docker_scripts.WRAPPER).
- Every root (the work dir and each extra root, e.g. /usr/local/bin of an imported image) is a tmpfs
  *volume* (`size=<disk_mb>m,nr_inodes=<MAX_FILES_PER_ROOT>`), not a `--tmpfs` mount: the archive API (the old
  path's read-back) does not see `--tmpfs` mounts, but it does see volumes. So every root is capped in bytes and in
  files (the read-back reads all of it), and the image's own content under an extra root is hidden (reset seeds
  it exactly).
- A root's top folder belongs to root with mode 1777 (like /tmp), not to the agent: the agent owns all it
  creates inside, but cannot hang state on the folder itself that emptying it would not clear (user xattrs,
  ACLs, timestamps) and that the next episode of the warm pool would see.
- /tmp and /dev/shm are small `--tmpfs` mounts, emptied on reset with /dev/mqueue; reset also removes the
  System V IPC objects of the container's IPC namespace, so nothing passes from one pooled episode to the next.
- Containers and volumes carry labels (owner pid, host); a provider removes those whose owner died (a killed
  run), and `shutdown()` (at interpreter exit; SIGTERM is turned into KeyboardInterrupt when nothing else
  handles it, so the runner's Ctrl-C path runs) removes its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import threading
import uuid
from typing import Any, Literal

from envs.sandbox.base import (
    MAX_FILES_PER_ROOT,
    Sandbox,
    SandboxError,
    SandboxProvider,
    SandboxSpec,
    SandboxUnavailable,
)
from envs.sandbox.docker_sandbox import DockerSandbox, docker_sdk, roots_of
from envs.sandbox.docker_shell import ShellLost
from envs.sandbox.process import pid_alive

POOL_SIZE = 4  # idle containers kept per spec
TMP_MB = 16  # /tmp and /dev/shm
TMP_INODES = 4096  # each of /tmp and /dev/shm: inodes cost kernel memory that no size= bounds
LABEL = "safety-sandbox"
LABEL_OWNER = "safety-sandbox.owner-pid"
LABEL_HOST = "safety-sandbox.host"
SERVER_CAPABILITIES = ["SETUID", "SETGID", "KILL", "DAC_READ_SEARCH"]  # root's only, for the shell server
SHELL_ENV = "SAFETY_SANDBOX_DOCKER_SHELL"  # "exec" picks the old path for a whole run (the benchmark's "before")
SHELLS = ("persistent", "exec")


class DockerProvider(SandboxProvider):
    name = "docker"

    def __init__(self, shell: Literal["persistent", "exec"] | None = None) -> None:
        """`shell`: "persistent" (a shell server per container) or "exec" (one `docker exec` per command);
        None: $SAFETY_SANDBOX_DOCKER_SHELL, else "persistent"."""
        shell = shell or os.environ.get(SHELL_ENV) or "persistent"
        if shell not in SHELLS:
            raise SandboxUnavailable(f"{SHELL_ENV}={shell!r} is no docker shell; expected one of {', '.join(SHELLS)}")
        self.shell = shell
        self._persistent = shell == "persistent"
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

        def orphaned(labels: dict[str, str] | None) -> bool:
            owner = (labels or {}).get(LABEL_OWNER, "")
            return owner.isdigit() and not pid_alive(int(owner))

        # One listing call each (the high-level lists inspect every item and fail on one removed meanwhile);
        # each removal on its own, so one that races with another process does not stop the rest.
        with contextlib.suppress(Exception):
            for container in client.api.containers(all=True, filters=filters):
                if orphaned(container.get("Labels")):
                    with contextlib.suppress(Exception):
                        client.api.remove_container(container["Id"], force=True, v=True)
        with contextlib.suppress(Exception):
            for volume in client.api.volumes(filters=filters).get("Volumes") or []:
                if orphaned(volume.get("Labels")):
                    with contextlib.suppress(Exception):
                        client.api.remove_volume(volume["Name"], force=True)

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
        docker = docker_sdk()
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
            if sandbox.alive():
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
        docker = docker_sdk()
        image = self._image(spec)
        spec = dataclasses.replace(spec, image=image)
        limits = spec.limits
        name = f"safety-sandbox-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        labels = self._labels()
        volumes = [name, *(f"{name}-{i}" for i in range(1, len(roots_of(spec))))]  # one per root, in order
        scratch = f"size={TMP_MB}m,nr_inodes={TMP_INODES},mode=1777"
        container = None
        try:
            for volume in volumes:
                self.client.volumes.create(name=volume, driver="local", labels=labels, driver_opts={
                    "type": "tmpfs", "device": "tmpfs",
                    "o": f"size={limits.disk_mb}m,nr_inodes={MAX_FILES_PER_ROOT},mode=1777,nosuid,nodev"})
            container = self.client.containers.create(
                image, ["sleep", "infinity"], name=name, hostname="sandbox", labels=labels, init=True,
                network_mode="none", ipc_mode="private", cap_drop=["ALL"],
                cap_add=SERVER_CAPABILITIES if self._persistent else None, security_opt=["no-new-privileges"],
                mem_limit=f"{limits.memory_mb}m", memswap_limit=f"{limits.memory_mb}m",
                pids_limit=limits.pids, nano_cpus=int(limits.cpus * 1e9), read_only=True,
                tmpfs={"/tmp": scratch, "/dev/shm": scratch},
                mounts=[docker.types.Mount(root, volume, type="volume", no_copy=True)
                        for root, volume in zip(roots_of(spec), volumes, strict=True)],
                environment={"LANG": "C.UTF-8"}, working_dir=spec.workdir)
            sandbox = DockerSandbox(self, spec, container, volumes)
            with self._lock:
                self._live.add(sandbox)
            container.start()
            if self._persistent:
                with contextlib.suppress(ShellLost):  # an image without python3: one exec per command
                    sandbox.start_shell()
            return sandbox
        except (docker.errors.DockerException, OSError, SandboxError) as exc:
            with contextlib.suppress(Exception):
                if container is not None:
                    container.remove(force=True)
            for volume in volumes:
                with contextlib.suppress(Exception):
                    self.client.volumes.get(volume).remove(force=True)
            with self._lock:
                self._live = {s for s in self._live if s.container.name != name}
            raise SandboxError(f"could not start a container from {image}: {exc}") from exc

    def forget(self, sandbox: DockerSandbox) -> None:
        with self._lock:
            self._live.discard(sandbox)
            idle = self._idle.get(sandbox.spec)
            if idle and sandbox in idle:
                idle.remove(sandbox)


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
