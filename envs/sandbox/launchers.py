"""How the local provider enters its namespaces: bubblewrap, or `unshare` + `pivot_root` where bubblewrap is
missing. Both build the same view: read-only /usr and /etc, the sandbox's roots bound read-write, a private
/proc, /dev and /tmp, no network, every capability dropped, and the agent as uid 1000."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from envs.sandbox.base import SandboxUnavailable

AGENT_UID = 1000
ETC_BINDS = ("ld.so.cache", "alternatives", "localtime")  # host /etc entries programs need, read-only
USR_LINKS = tuple(link for link in ("bin", "lib", "lib64", "sbin") if Path(f"/usr/{link}").exists())
INSTALL_HINT = "install bubblewrap (Debian: apt-get install bubblewrap) or use backend=docker"


@dataclass(frozen=True)
class Layout:
    """What a sandbox's file tree is made of on the host."""

    etc: Path  # the synthetic /etc (passwd, group, hosts, and mount points for ETC_BINDS)
    roots: dict[str, Path]  # sandbox folder -> host mirror
    workdir: str
    scratch: Path  # an empty host folder the unshare launcher mounts the new root on
    env: dict[str, str]


class Launcher(ABC):
    name: str
    host_owner: int | None = None  # the host uid the sandbox's files must belong to (None: mapped by the launcher)

    @abstractmethod
    def argv(self, layout: Layout, command: str) -> list[str]:
        """The host command that runs `command` with bash inside the sandbox."""

    def probe(self) -> None:
        """Raise SandboxUnavailable unless this launcher can build a sandbox here."""
        with tempfile.TemporaryDirectory(prefix="safety-sandbox-probe-") as tmp:
            etc, ws, scratch = Path(tmp, "etc"), Path(tmp, "ws"), Path(tmp, "scratch")
            for folder in (etc, ws, scratch):
                folder.mkdir()
            layout = Layout(etc=etc, roots={"/workspace": ws}, workdir="/workspace", scratch=scratch, env={})
            result = subprocess.run(self.argv(layout, "true"), capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise SandboxUnavailable(f"{self.name} cannot create a sandbox here: {result.stderr.strip()[-500:]}")


class Bwrap(Launcher):
    name = "bubblewrap"

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def argv(self, layout: Layout, command: str) -> list[str]:
        argv = [self.binary, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--hostname", "sandbox", "--uid", str(AGENT_UID), "--gid", str(AGENT_UID),
                "--ro-bind", "/usr", "/usr", "--ro-bind", str(layout.etc), "/etc"]
        for name in ETC_BINDS:
            if (layout.etc / name).exists():
                argv += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        for link in USR_LINKS:
            argv += ["--symlink", f"usr/{link}", f"/{link}"]
        argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for root, mirror in layout.roots.items():
            argv += ["--bind", str(mirror), root]
        argv += ["--chdir", layout.workdir, "--clearenv"]
        for key, value in layout.env.items():
            argv += ["--setenv", key, value]
        return argv + ["--", "/bin/bash", "-c", command]


# Runs as (namespace) root in fresh mount/pid/net/ipc/uts namespaces: builds the new root on a small tmpfs,
# pivots into it, detaches the host's tree, makes / read-only, then drops to the agent with no capabilities
# (an empty bounding set, so no capability comes back on exec) and no way to gain privileges.
UNSHARE_INIT = r"""
set -e
R=$1; ETC=$2; WORKDIR=$3; REUID=$4; AGENT_UID=$5; shift 5
mount --make-rprivate /
mount -t tmpfs -o size=1m,mode=0755 sandbox-root "$R"
mkdir -p "$R/usr" "$R/etc" "$R/proc" "$R/dev" "$R/tmp" "$R/.old"
mount --rbind /usr "$R/usr"; mount -o remount,bind,ro "$R/usr"
mount --bind "$ETC" "$R/etc"
for name in """ + " ".join(ETC_BINDS) + r"""; do
  [ -e "$ETC/$name" ] && mount --bind "/etc/$name" "$R/etc/$name" && mount -o remount,bind,ro "$R/etc/$name"
done
mount -o remount,bind,ro "$R/etc"
for dev in null zero full random urandom tty; do
  touch "$R/dev/$dev"; mount --bind "/dev/$dev" "$R/dev/$dev"
done
ln -s /proc/self/fd "$R/dev/fd"
mount -t tmpfs -o size=16m,mode=1777 sandbox-tmp "$R/tmp"
while [ "$1" != "--" ]; do mkdir -p "$R$2"; mount --bind "$1" "$R$2"; shift 2; done; shift
for link in """ + " ".join(USR_LINKS) + r"""; do ln -s "usr/$link" "$R/$link"; done
mount -t proc proc "$R/proc"
cd "$R"; pivot_root . .old; umount -l /.old; rmdir /.old
mount -o remount,bind,ro /
cd "$WORKDIR"
ids=
[ "$REUID" = 1 ] && ids="--reuid=$AGENT_UID --regid=$AGENT_UID --clear-groups"
exec setpriv $ids --bounding-set=-all --inh-caps=-all --no-new-privs -- "$@"
"""


class Unshare(Launcher):
    """The fallback. As real root the agent runs as uid 1000; otherwise as root of a user namespace (mapped to
    the caller), still without capabilities, so file modes bind it less strictly than under bubblewrap."""

    name = "unshare"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.as_root = os.geteuid() == 0
        self.host_owner = AGENT_UID if self.as_root else None

    def argv(self, layout: Layout, command: str) -> list[str]:
        spaces = ["--mount", "--net", "--pid", "--fork", "--kill-child", "--ipc", "--uts"]
        if not self.as_root:
            spaces = ["--user", "--map-root-user", *spaces]
        binds = [str(part) for root, mirror in layout.roots.items() for part in (mirror, root)]
        env = [f"{key}={value}" for key, value in layout.env.items()]
        return [self.binary, *spaces, "sh", "-c", UNSHARE_INIT, "sandbox-init", str(layout.scratch), str(layout.etc),
                layout.workdir, "1" if self.as_root else "0", str(AGENT_UID), *binds, "--",
                "/usr/bin/env", "-i", *env, "/bin/bash", "-c", command]


def find_launcher(prefer: str | None = None) -> Launcher:
    """bubblewrap where it works, else unshare; `prefer` ("bubblewrap" or "unshare") forces one."""
    candidates: list[Launcher] = []
    problems = []
    if prefer in (None, "bubblewrap"):
        if binary := shutil.which("bwrap"):
            candidates.append(Bwrap(binary))
        else:
            problems.append("bubblewrap (bwrap) is not installed")
    if prefer in (None, "unshare"):
        if (binary := shutil.which("unshare")) and shutil.which("setpriv"):
            candidates.append(Unshare(binary))
        else:
            problems.append("unshare/setpriv (util-linux) are not installed")
    for launcher in candidates:
        try:
            launcher.probe()
            return launcher
        except (SandboxUnavailable, OSError, subprocess.TimeoutExpired) as exc:
            problems.append(str(exc))
    raise SandboxUnavailable(f"the local sandbox cannot run here ({'; '.join(problems)}): {INSTALL_HINT}")
