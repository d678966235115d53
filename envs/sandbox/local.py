"""The `local` provider: bubblewrap. No network (all namespaces unshared), read-only /usr, no host
files beyond /usr, a private work dir on a size- and inode-capped tmpfs, an unprivileged user that is no host
account, a seccomp filter, and pids/memory limits through cgroups (ulimits where cgroups are not writable).
Each command is a fresh bwrap run over the same work dir, so nothing the agent starts outlives its command.

As root, everything the sandbox is made of on the host (synthetic /etc, work dirs) lives on tmpfs mounts
(nosuid, nodev) inside one private folder, so even /proc/self/mountinfo names no host path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from envs.sandbox.base import (
    MAX_FILES_PER_ROOT,
    ExecResult,
    NotRegularFileError,
    Sandbox,
    SandboxError,
    SandboxProvider,
    SandboxSpec,
    SandboxUnavailable,
)
from envs.sandbox.launchers import AGENT_UID, LAUNCH_ENV, Launcher, Layout, find_launcher
from envs.sandbox.limits import CgroupLimits, reap_dead_cgroups, ulimit_prefix
from envs.sandbox.process import run_capped
from envs.sandbox.tmpfs import detach, mount_tmpfs
from envs.world.files import FileEntry, PathEscapeError, file_entry_from_bytes
from envs.world.paths import is_under

TMP_PREFIX = "safety-sandbox-"
HOST_FOLDER_TMPFS = "size=1m,nr_inodes=256,mode=0711"  # /etc and empty mount points; others may only traverse
OPEN_NO_BLOCK = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # a FIFO must never block the harness
REJECTED_EXIT_CODE = 126  # bash's "cannot execute"


class LocalSandbox(Sandbox):
    def __init__(self, spec: SandboxSpec, launcher: Launcher) -> None:
        self.spec = spec
        self._launcher = launcher
        self._name = f"{os.getpid()}-{uuid.uuid4().hex[:10]}"
        self._host = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{self._name}-"))
        self._mounted = False
        self._closed = False
        try:
            self._host.chmod(0o711)  # a launcher running as the agent's host uid must reach the folders inside
            self._mounted = self._may_mount(self._host, HOST_FOLDER_TMPFS)
            self._etc = self._make_etc()
            self._scratch = self._host / "root"
            self._scratch.mkdir()
            self._roots = {root: self._host / "fs" / root.strip("/").replace("/", "__") for root in self._all_roots()}
            for mirror in self._roots.values():
                mirror.mkdir(parents=True)
                if self._mounted:  # every root capped, or (no right to mount) none is and snapshots read it all
                    mount_tmpfs(mirror, f"size={spec.limits.disk_mb}m,nr_inodes={MAX_FILES_PER_ROOT},mode=0755")
            self._cgroup = CgroupLimits(self._name, spec.limits, owner=launcher.run_as)
        except OSError as exc:
            self.close()
            raise SandboxError(f"could not prepare the local sandbox: {exc}") from exc
        self._layout = Layout(etc=self._etc, roots=self._roots, workdir=spec.workdir, scratch=self._scratch,
                              env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": spec.workdir, "LANG": "C.UTF-8",
                                   "USER": "agent"})

    # ---- set-up ---------------------------------------------------------------------------------
    def _all_roots(self) -> list[str]:
        return [self.spec.workdir, *self.spec.extra_roots]

    @staticmethod
    def _may_mount(target: Path, options: str) -> bool:
        """Mount a capped tmpfs on `target`; False where the harness has no right to mount (not root)."""
        if os.geteuid() != 0:
            return False
        try:
            mount_tmpfs(target, options)
        except PermissionError:  # root without CAP_SYS_ADMIN (e.g. in a container): no caps, full snapshots
            return False
        return True

    def _make_etc(self) -> Path:
        etc = self._host / "etc"
        etc.mkdir()
        (etc / "passwd").write_text(f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                    f"agent:x:{AGENT_UID}:{AGENT_UID}:agent:{self.spec.workdir}:/bin/bash\n")
        (etc / "group").write_text(f"root:x:0:\nagent:x:{AGENT_UID}:\n")
        (etc / "hostname").write_text("sandbox\n")
        (etc / "hosts").write_text("127.0.0.1 localhost sandbox\n")
        for name in ("ld.so.cache", "alternatives", "localtime"):
            source = Path("/etc") / name
            if source.is_dir():
                (etc / name).mkdir()
            elif source.exists():
                (etc / name).touch()
        return etc

    # ---- the interface ------------------------------------------------------------------------
    def exec(self, command: str, timeout_s: float | None = None, stdin: bytes | None = None) -> ExecResult:
        self._require_open()
        limits = self.spec.limits
        try:
            script = (ulimit_prefix(limits) + command).encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return _rejected("it is not valid text (it holds a lone UTF-16 surrogate)")
        if b"\0" in script:
            return _rejected("it holds a NUL byte, which bash cannot run")
        try:
            with self._launcher.launch(self._layout, script) as launch:
                return run_capped(self._cgroup.enter_prefix() + launch.argv, timeout_s or limits.timeout_s,
                                  limits.output_bytes, stdin=stdin, on_timeout=self._cgroup.kill_all,
                                  pass_fds=launch.pass_fds, user=launch.user, env=LAUNCH_ENV, cwd="/")
        except OSError as exc:
            raise SandboxError(f"{self._launcher.name} failed to start: {exc}") from exc

    def read_file(self, path: str) -> bytes:
        with self._open_regular(path) as fd:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)

    def write_file(self, path: str, data: bytes) -> None:
        host = self._host_path(path)  # validates the path
        try:
            mode = host.lstat().st_mode
        except OSError:
            mode = stat.S_IFREG  # not there yet: the agent's shell creates it (or says why it cannot)
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):  # `cat >` a FIFO would block
            raise NotRegularFileError(path)
        self._write_as_agent(path, data)

    def snapshot_files(self) -> dict[str, FileEntry]:
        """Every regular file: no count cap (the tmpfs caps inodes as root; elsewhere the disk cap bounds it)."""
        self._require_open()
        files: dict[str, FileEntry] = {}
        for root, mirror in self._roots.items():
            for host in _walk_files(mirror):
                try:
                    fd = os.open(host, OPEN_NO_BLOCK)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENXIO, errno.ENOENT):
                        continue  # a symlink or socket: not a regular file
                    raise SandboxError(f"could not read back {host.relative_to(mirror)} in {root}: {exc}") from exc
                with os.fdopen(fd, "rb") as fh:
                    st = os.fstat(fd)
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    data = fh.read()
                files[f"{root.rstrip('/')}/{host.relative_to(mirror).as_posix()}"] = file_entry_from_bytes(
                    data, stat.S_IMODE(st.st_mode))
        return files

    def reset(self, files: dict[str, FileEntry]) -> None:
        self._require_open()
        self._cgroup.kill_all()
        try:
            for mirror in self._roots.values():
                _empty_dir(mirror)
            for path, entry in files.items():
                host = self._host_path(path)
                host.parent.mkdir(parents=True, exist_ok=True)
                host.write_bytes(entry.data())
                host.chmod(entry.mode)
            owner = self._launcher.host_owner
            if owner is not None:  # the agent is this host uid: hand it its roots, as the seed says
                for mirror in self._roots.values():
                    for dirpath, dirnames, filenames in os.walk(mirror):
                        for name in [".", *dirnames, *filenames]:
                            os.lchown(os.path.join(dirpath, name), owner, owner)
        except (OSError, PathEscapeError) as exc:
            hint = ""
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                hint = f" (a root holds at most {self.spec.limits.disk_mb} MB and {MAX_FILES_PER_ROOT} files)"
            raise SandboxError(f"could not reset the work dir: {exc}{hint}") from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        cgroup = getattr(self, "_cgroup", None)
        if cgroup is not None:
            cgroup.close()
        if self._mounted:
            detach(self._host)  # the work dirs' tmpfs mounts go with it
        shutil.rmtree(self._host, ignore_errors=True, onerror=None)

    # ---- helpers ------------------------------------------------------------------------------
    def _require_open(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox is closed")

    @contextlib.contextmanager
    def _open_regular(self, path: str) -> Iterator[int]:
        """An fd on a regular file, opened without following a link or blocking on a FIFO."""
        host = self._host_path(path)
        try:
            fd = os.open(host, OPEN_NO_BLOCK)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
                raise FileNotFoundError(path) from None  # a symlink is never followed out of the sandbox
            if exc.errno == errno.ENXIO:
                raise NotRegularFileError(path) from None
            if isinstance(exc, PermissionError):
                raise
            raise SandboxError(f"could not open {path}: {exc}") from exc
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(path)
            if not stat.S_ISREG(mode):
                raise NotRegularFileError(path)
            yield fd
        finally:
            os.close(fd)

    def _host_path(self, path: str) -> Path:
        if "\0" in path:
            raise PathEscapeError(f"{path!r} holds a NUL byte")
        normal = os.path.normpath(path)
        for root, mirror in self._roots.items():
            if is_under(normal, root):
                host = (mirror / os.path.relpath(normal, root)).resolve(strict=False)
                if host != mirror and mirror not in host.parents:
                    raise PathEscapeError(f"{path!r} leads outside the work dir")
                return host
        raise PathEscapeError(f"{path!r} is outside the sandbox's folders ({', '.join(self._roots)})")


def _rejected(why: str) -> ExecResult:
    """What the agent sees for a command no shell can run: an observation, not a sandbox fault."""
    return ExecResult(exit_code=REJECTED_EXIT_CODE, stderr=f"command rejected: {why}; nothing ran")


def _walk_files(mirror: Path) -> Iterator[Path]:
    """Every non-directory under `mirror`, in a stable order; an unreadable folder is an error, never a gap."""

    def fail(exc: OSError) -> None:
        raise SandboxError(f"could not read the work dir back: {exc}")

    for dirpath, dirnames, filenames in os.walk(mirror, followlinks=False, onerror=fail):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _empty_dir(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            for dirpath, dirnames, _ in os.walk(child):
                for d in dirnames:
                    with contextlib.suppress(OSError):
                        os.chmod(os.path.join(dirpath, d), 0o755)
            os.chmod(child, 0o755)
            shutil.rmtree(child)
        else:
            child.unlink()


class LocalProvider(SandboxProvider):
    name = "local"

    def __init__(self, prefer: str | None = None) -> None:
        self._prefer = prefer  # "bubblewrap" or "unshare" to force a launcher; None: the first that works
        self._launcher: Launcher | None = None

    def _probe(self) -> Launcher:
        if self._launcher is None:
            self._launcher = find_launcher(self._prefer)
            reap_dead_cgroups()
            _reap_dead_dirs()
        return self._launcher

    def check(self) -> None:
        self._probe()

    def acquire(self, spec: SandboxSpec) -> Sandbox:
        if spec.image is not None:
            raise SandboxUnavailable(f"image {spec.image!r} needs backend=docker; the local sandbox has no images")
        return LocalSandbox(spec, self._probe())


def _reap_dead_dirs() -> None:
    """Remove work dirs of sandboxes whose process died without cleaning up."""
    for folder in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*"):
        owner = folder.name.removeprefix(TMP_PREFIX).split("-")[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            for mirror in folder.glob("fs/*"):  # folders made before the host folder was a tmpfs
                detach(mirror)
            detach(folder)
            shutil.rmtree(folder, ignore_errors=True)
