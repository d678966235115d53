"""The `local` provider: bubblewrap. No network (all namespaces unshared), read-only /usr, no host
files beyond /usr, a private work dir on a size-capped tmpfs, an unprivileged user, and pids/memory
limits through cgroups (ulimits where cgroups are not writable). Each command is a fresh bwrap run over
the same work dir, so nothing the agent starts outlives its command.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import tempfile
import uuid
from pathlib import Path

from envs.sandbox.base import (
    ExecResult,
    Sandbox,
    SandboxError,
    SandboxProvider,
    SandboxSpec,
    SandboxUnavailable,
    register_provider,
)
from envs.sandbox.launchers import AGENT_UID, Launcher, Layout, find_launcher
from envs.sandbox.limits import CgroupLimits, reap_dead_cgroups, ulimit_prefix
from envs.sandbox.process import run_capped
from envs.world.files import FileEntry, PathEscapeError, file_entry_from_bytes

TMP_PREFIX = "safety-sandbox-"
MAX_FILES = 5000


class LocalSandbox(Sandbox):
    def __init__(self, spec: SandboxSpec, launcher: Launcher) -> None:
        self.spec = spec
        self._launcher = launcher
        self._name = f"{os.getpid()}-{uuid.uuid4().hex[:10]}"
        self._host = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{self._name}-"))
        self._mounted: list[Path] = []
        self._closed = False
        try:
            self._etc = self._make_etc()
            self._scratch = self._host / "root"
            self._scratch.mkdir()
            self._roots = {root: self._host / "fs" / root.strip("/").replace("/", "__") for root in self._all_roots()}
            for mirror in self._roots.values():
                mirror.mkdir(parents=True)
                self._cap_disk(mirror)
            self._cgroup = CgroupLimits(self._name, spec.limits)
        except OSError as exc:
            self.close()
            raise SandboxError(f"could not prepare the local sandbox: {exc}") from exc

    # ---- set-up ---------------------------------------------------------------------------------
    def _all_roots(self) -> list[str]:
        return [self.spec.workdir, *self.spec.extra_roots]

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

    def _cap_disk(self, mirror: Path) -> None:
        """Put the work dir on its own tmpfs so filling it cannot fill the host's disk (needs root)."""
        if os.geteuid() != 0:
            return
        size = f"size={self.spec.limits.disk_mb}m,mode=0755"
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", size, "tmpfs", str(mirror)], capture_output=True)
        if result.returncode == 0:
            self._mounted.append(mirror)

    def _argv(self, command: str) -> list[str]:
        layout = Layout(etc=self._etc, roots=self._roots, workdir=self.spec.workdir, scratch=self._scratch,
                        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": self.spec.workdir, "LANG": "C.UTF-8",
                             "USER": "agent"})
        return self._cgroup.enter_prefix() + self._launcher.argv(layout, ulimit_prefix(self.spec.limits) + command)

    # ---- the interface ------------------------------------------------------------------------
    def exec(self, command: str, timeout_s: float | None = None, stdin: bytes | None = None) -> ExecResult:
        self._require_open()
        limits = self.spec.limits
        try:
            return run_capped(self._argv(command), timeout_s or limits.timeout_s, limits.output_bytes, stdin=stdin,
                              on_timeout=self._cgroup.kill_all)
        except OSError as exc:
            raise SandboxError(f"bwrap failed to start: {exc}") from exc

    def read_file(self, path: str) -> bytes:
        host = self._host_path(path)
        if host.is_symlink():
            raise FileNotFoundError(path)  # never follow the agent's links out of the sandbox
        if host.is_dir():
            raise IsADirectoryError(path)
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            return fh.read()

    def write_file(self, path: str, data: bytes) -> None:
        self._host_path(path)  # validates the path
        self._write_as_agent(path, data)

    def snapshot_files(self) -> dict[str, FileEntry]:
        self._require_open()
        files: dict[str, FileEntry] = {}
        for root, mirror in self._roots.items():
            for dirpath, dirnames, filenames in os.walk(mirror, followlinks=False):
                for name in sorted(filenames):
                    if len(files) >= MAX_FILES:
                        return files
                    host = Path(dirpath) / name
                    st = host.lstat()
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    rel = host.relative_to(mirror).as_posix()
                    try:
                        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW)
                    except OSError:
                        continue
                    with os.fdopen(fd, "rb") as fh:
                        data = fh.read()
                    files[f"{root.rstrip('/')}/{rel}"] = file_entry_from_bytes(data, stat.S_IMODE(st.st_mode))
                dirnames.sort()
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
            raise SandboxError(f"could not reset the work dir: {exc}") from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        cgroup = getattr(self, "_cgroup", None)
        if cgroup is not None:
            cgroup.close()
        for mirror in self._mounted:
            subprocess.run(["umount", "-l", str(mirror)], capture_output=True)
        shutil.rmtree(self._host, ignore_errors=True, onerror=None)

    # ---- helpers ------------------------------------------------------------------------------
    def _require_open(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox is closed")

    def _host_path(self, path: str) -> Path:
        normal = os.path.normpath(path)
        for root, mirror in self._roots.items():
            if normal == root or normal.startswith(root.rstrip("/") + "/"):
                host = (mirror / os.path.relpath(normal, root)).resolve(strict=False)
                if host != mirror and mirror not in host.parents:
                    raise PathEscapeError(f"{path!r} leads outside the work dir")
                return host
        raise PathEscapeError(f"{path!r} is outside the sandbox's folders ({', '.join(self._roots)})")


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
            for mirror in folder.glob("fs/*"):
                subprocess.run(["umount", "-l", str(mirror)], capture_output=True)
            shutil.rmtree(folder, ignore_errors=True)


register_provider("local")(LocalProvider)
