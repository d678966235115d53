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
from envs.sandbox.limits import CgroupLimits, reap_dead_cgroups, ulimit_prefix
from envs.sandbox.process import run_capped
from envs.world.files import FileEntry, PathEscapeError, file_entry_from_bytes

AGENT_UID = 1000
TMP_PREFIX = "safety-sandbox-"
MAX_FILES = 5000
INSTALL_HINT = "install bubblewrap (Debian: apt-get install bubblewrap) or use backend=docker"


class LocalSandbox(Sandbox):
    def __init__(self, spec: SandboxSpec, bwrap: str) -> None:
        self.spec = spec
        self._bwrap = bwrap
        self._name = f"{os.getpid()}-{uuid.uuid4().hex[:10]}"
        self._host = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{self._name}-"))
        self._mounted: list[Path] = []
        self._closed = False
        try:
            self._etc = self._make_etc()
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
        argv = [self._bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--hostname", "sandbox", "--uid", str(AGENT_UID), "--gid", str(AGENT_UID),
                "--ro-bind", "/usr", "/usr", "--ro-bind", str(self._etc), "/etc"]
        for name in ("ld.so.cache", "alternatives", "localtime"):
            if (self._etc / name).exists():
                argv += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        for link in ("bin", "lib", "lib64", "sbin"):
            if Path(f"/usr/{link}").exists():
                argv += ["--symlink", f"usr/{link}", f"/{link}"]
        argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for root, mirror in self._roots.items():
            argv += ["--bind", str(mirror), root]
        argv += ["--chdir", self.spec.workdir, "--clearenv",
                 "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", self.spec.workdir,
                 "--setenv", "LANG", "C.UTF-8", "--setenv", "USER", "agent",
                 "--", "/bin/bash", "-c", ulimit_prefix(self.spec.limits) + command]
        return self._cgroup.enter_prefix() + argv

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

    def __init__(self) -> None:
        self._bwrap: str | None = None

    def _probe(self) -> str:
        if self._bwrap is not None:
            return self._bwrap
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable(f"the local sandbox needs bubblewrap (bwrap), which is not installed: "
                                     f"{INSTALL_HINT}")
        links = [arg for link in ("bin", "lib", "lib64") if Path(f"/usr/{link}").exists()
                 for arg in ("--symlink", f"usr/{link}", f"/{link}")]
        probe = subprocess.run([bwrap, "--unshare-all", "--ro-bind", "/usr", "/usr", *links, "--", "/usr/bin/true"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            raise SandboxUnavailable(f"bubblewrap cannot create namespaces here ({probe.stderr.strip()}); "
                                     "enable unprivileged user namespaces or run as root, or use backend=docker")
        reap_dead_cgroups()
        _reap_dead_dirs()
        self._bwrap = bwrap
        return bwrap

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
