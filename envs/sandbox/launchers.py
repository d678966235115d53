"""How the local provider enters its namespaces: bubblewrap, or `unshare` + `pivot_root` where bubblewrap is
missing. Both build the same view: read-only /usr and /etc, the sandbox's roots bound read-write, a private
/proc, /dev and /tmp, no network, every capability dropped, and the agent as uid 1000.

Nothing of the harness reaches the sandbox: launchers start with a bare environment, and the agent's command
travels in an inherited memory file (`bash -c '. /dev/fd/N'`), never in an argv string (Linux caps one at 128 KiB).
bubblewrap also reads its own arguments from such a file, so the cmdline the sandbox's pid 1 shows holds no host
path, and it loads a seccomp filter."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from envs.sandbox.base import SandboxUnavailable
from envs.sandbox.process import run_capped
from envs.sandbox.seccomp_filter import seccomp_program

AGENT_UID = 1000
# When the harness is root, bubblewrap runs as this host uid, which no account uses: the agent's uid 1000 maps to
# it, so a file or process the agent makes belongs to nobody real on the host (never to root).
HOST_AGENT_UID = 1_999_001_000
LAUNCH_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}  # the launchers' whole environment: no harness secrets
ETC_BINDS = ("ld.so.cache", "alternatives", "localtime")  # host /etc entries programs need, read-only
USR_LINKS = tuple(link for link in ("bin", "lib", "lib64", "sbin") if Path(f"/usr/{link}").exists())
TMP_BYTES = 16 * 1024 * 1024  # the sandbox's /tmp (private to one command)
INSTALL_HINT = "install bubblewrap (Debian: apt-get install bubblewrap) or use backend=docker"


@dataclass(frozen=True)
class Layout:
    """What a sandbox's file tree is made of on the host."""

    etc: Path  # the synthetic /etc (passwd, group, hosts, and mount points for ETC_BINDS)
    roots: dict[str, Path]  # sandbox folder -> host mirror
    workdir: str
    scratch: Path  # an empty host folder the unshare launcher mounts the new root on
    env: dict[str, str]


@dataclass(frozen=True)
class Launch:
    """A host command ready to start: `pass_fds` must be inherited, `user` is the host uid (and gid) to start it
    as (None: the harness's own)."""

    argv: list[str]
    pass_fds: tuple[int, ...]
    user: int | None


class Launcher(ABC):
    name: str
    host_owner: int | None = None  # the host uid the sandbox's files must belong to (None: mapped by the launcher)
    run_as: int | None = None  # the host uid the launcher starts as (None: the harness's own)

    @abstractmethod
    def argv(self, layout: Layout, script_fd: int, data_fd: Callable[[bytes], int]) -> list[str]:
        """The host command that runs, with bash inside the sandbox, the script readable at inherited fd
        `script_fd`; `data_fd(bytes)` makes further inherited memory files the command may refer to."""

    @contextlib.contextmanager
    def launch(self, layout: Layout, script: bytes) -> Iterator[Launch]:
        """The command that runs `script` in the sandbox; its memory files are closed on exit."""
        with contextlib.ExitStack() as open_fds:
            fds: list[int] = []

            def data_fd(data: bytes) -> int:
                fd = os.memfd_create("sandbox-data")  # close-on-exec; pass_fds hands it to the launcher only
                open_fds.callback(os.close, fd)
                fds.append(fd)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.lseek(fd, 0, os.SEEK_SET)
                return fd

            script_fd = data_fd(script)
            argv = self.argv(layout, script_fd, data_fd)
            yield Launch(argv=argv, pass_fds=tuple(fds), user=self.run_as)

    def probe(self) -> None:
        """Raise SandboxUnavailable unless this launcher can build a sandbox here."""
        with tempfile.TemporaryDirectory(prefix="safety-sandbox-probe-") as tmp:
            os.chmod(tmp, 0o711)  # a launcher that runs as another uid must reach the folders inside
            etc, ws, scratch = Path(tmp, "etc"), Path(tmp, "ws"), Path(tmp, "scratch")
            for folder in (etc, ws, scratch):
                folder.mkdir()
            layout = Layout(etc=etc, roots={"/workspace": ws}, workdir="/workspace", scratch=scratch, env={})
            with self.launch(layout, b"true") as launch:
                result = run_capped(launch.argv, 30, 4096, pass_fds=launch.pass_fds, user=launch.user,
                                    env=LAUNCH_ENV, cwd="/")
        if result.exit_code != 0:
            raise SandboxUnavailable(f"{self.name} cannot create a sandbox here: {result.stderr.strip()[-500:]}")


def source_script(script_fd: int) -> list[str]:
    """bash reading the whole script from the inherited fd, then running it as `bash -c` would."""
    return ["/bin/bash", "-c", f". /dev/fd/{script_fd}", "bash"]


class Bwrap(Launcher):
    name = "bubblewrap"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        if os.geteuid() == 0:  # never let the agent's uid map to host root
            self.run_as = self.host_owner = HOST_AGENT_UID
        # Options newer than some distributions' bubblewrap (0.8.0 and 0.7.0): used where known. Without the first,
        # the seccomp filter alone keeps the agent from new user namespaces.
        try:
            usage = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10,
                                   env=LAUNCH_ENV).stdout
        except (OSError, subprocess.TimeoutExpired):
            usage = ""
        self.no_new_userns = ["--disable-userns"] if "--disable-userns" in usage else []
        self.tmp_size = ["--size", str(TMP_BYTES)] if "--size" in usage else []

    def argv(self, layout: Layout, script_fd: int, data_fd: Callable[[bytes], int]) -> list[str]:
        args = ["--unshare-all", "--unshare-user", *self.no_new_userns, "--die-with-parent", "--new-session",
                "--cap-drop", "ALL", "--hostname", "sandbox", "--uid", str(AGENT_UID), "--gid", str(AGENT_UID),
                "--seccomp", str(data_fd(seccomp_program())),
                "--ro-bind", "/usr", "/usr", "--ro-bind", str(layout.etc), "/etc"]
        for name in ETC_BINDS:
            if (layout.etc / name).exists():
                args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        for link in USR_LINKS:
            args += ["--symlink", f"usr/{link}", f"/{link}"]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", *self.tmp_size, "--tmpfs", "/tmp"]
        for root, mirror in layout.roots.items():
            args += ["--bind", str(mirror), root]
        args += ["--remount-ro", "/", "--chdir", layout.workdir, "--clearenv"]
        for key, value in layout.env.items():
            args += ["--setenv", key, value]
        # The arguments (host paths included) go in a memory file bubblewrap reads and closes, so the cmdline of
        # the sandbox's pid 1 (bubblewrap itself) shows none of them.
        packed = b"".join(arg.encode() + b"\0" for arg in args)
        return [self.binary, "--args", str(data_fd(packed)), "--", *source_script(script_fd)]


# Runs as (namespace) root in fresh mount/pid/net/ipc/uts namespaces: builds the new root on a small tmpfs,
# pivots into it, detaches the host's tree, makes / read-only, then drops to the agent with no capabilities
# (an empty bounding set, so no capability comes back on exec) and no way to gain privileges.
UNSHARE_INIT = r"""
set -e
R=$1; ETC=$2; WORKDIR=$3; REUID=$4; AGENT_UID=$5; shift 5
mount --make-rprivate /
mount -t tmpfs -o size=1m,mode=0755,nosuid,nodev sandbox-root "$R"
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
mount -t tmpfs -o size=""" + str(TMP_BYTES) + r""",mode=1777,nosuid,nodev sandbox-tmp "$R/tmp"
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

    def argv(self, layout: Layout, script_fd: int, data_fd: Callable[[bytes], int]) -> list[str]:
        spaces = ["--mount", "--net", "--pid", "--fork", "--kill-child", "--ipc", "--uts", "--cgroup"]
        if not self.as_root:
            spaces = ["--user", "--map-root-user", *spaces]
        binds = [str(part) for root, mirror in layout.roots.items() for part in (mirror, root)]
        env = [f"{key}={value}" for key, value in layout.env.items()]
        return [self.binary, *spaces, "sh", "-c", UNSHARE_INIT, "sandbox-init", str(layout.scratch), str(layout.etc),
                layout.workdir, "1" if self.as_root else "0", str(AGENT_UID), *binds, "--",
                "/usr/bin/env", "-i", *env, *source_script(script_fd)]


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
        except (SandboxUnavailable, OSError) as exc:
            problems.append(str(exc))
    raise SandboxUnavailable(f"the local sandbox cannot run here ({'; '.join(problems)}): {INSTALL_HINT}")
