"""Process limits for the local sandbox: cgroup v1 (pids, memory) where the machine lets us, plus
ulimits inside the sandbox everywhere. Leftover cgroups of dead processes are reaped on start."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from envs.sandbox.base import SandboxLimits
from envs.sandbox.process import pid_alive

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("pids", "memory")
PREFIX = "safety-sandbox-"


class CgroupLimits:
    """A pids + memory cgroup (v1) per sandbox; `available` is False where cgroups are not writable."""

    def __init__(self, name: str, limits: SandboxLimits, owner: int | None = None) -> None:
        """`owner`: the host uid the sandbox's launcher starts as; it must be able to move itself in."""
        self.paths: list[Path] = []
        self.available = all(os.access(CGROUP_ROOT / c, os.W_OK) for c in CONTROLLERS)
        if not self.available:
            return
        try:
            for controller in CONTROLLERS:
                path = CGROUP_ROOT / controller / f"{PREFIX}{name}"
                path.mkdir(exist_ok=True)
                self.paths.append(path)
            (self.paths[0] / "pids.max").write_text(str(limits.pids))
            memory = self.paths[1]
            (memory / "memory.limit_in_bytes").write_text(str(limits.memory_mb * 1024 * 1024))
            if owner is not None:
                for path in self.paths:
                    os.chown(path / "cgroup.procs", owner, owner)
            swap = memory / "memory.memsw.limit_in_bytes"
            if swap.exists():
                with contextlib.suppress(OSError):
                    swap.write_text(str(limits.memory_mb * 1024 * 1024))
        except OSError:
            self.close()
            self.available = False

    def enter_prefix(self) -> list[str]:
        """A command prefix that moves the process into the cgroups, then execs the rest."""
        if not self.available:
            return []
        joins = " && ".join(f"echo $$ > {p}/cgroup.procs" for p in self.paths)
        return ["sh", "-c", f'{joins} && exec "$@"', "sh"]

    def kill_all(self) -> None:
        for path in self.paths:
            procs = path / "cgroup.procs"
            with contextlib.suppress(OSError):
                for pid in procs.read_text().split():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(int(pid), 9)

    def close(self) -> None:
        self.kill_all()
        for path in self.paths:
            with contextlib.suppress(OSError):
                path.rmdir()
        self.paths = []


def ulimit_prefix(limits: SandboxLimits) -> str:
    """Shell ulimits applied inside the sandbox before the agent's command."""
    return (f"ulimit -v {limits.memory_mb * 1024} 2>/dev/null; ulimit -u {limits.pids} 2>/dev/null; "
            f"ulimit -f {limits.disk_mb * 1024} 2>/dev/null; ")


def reap_dead_cgroups() -> None:
    """Remove cgroups left by sandbox processes that died without cleaning up (e.g. SIGKILL)."""
    for controller in CONTROLLERS:
        base = CGROUP_ROOT / controller
        if not os.access(base, os.W_OK):
            continue
        for path in base.glob(f"{PREFIX}*"):
            owner = path.name.removeprefix(PREFIX).split("-")[0]
            if owner.isdigit() and not pid_alive(int(owner)):
                with contextlib.suppress(OSError):
                    for pid in (path / "cgroup.procs").read_text().split():
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.kill(int(pid), 9)
                    path.rmdir()
