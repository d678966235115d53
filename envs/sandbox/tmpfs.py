"""Mount and detach the local sandbox's tmpfs folders with the mount(2) syscall (no `mount` process per
sandbox). Every one is nosuid and nodev: a setuid file or device node the agent leaves behind means nothing on
the host."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MNT_DETACH = 0x2
_LIBC = ctypes.CDLL(None, use_errno=True)


def mount_tmpfs(target: Path, options: str, noexec: bool = False) -> None:
    """Mount a fresh tmpfs (`options` e.g. "size=64m,nr_inodes=20000,mode=0755") on `target`. Raises OSError
    (PermissionError without CAP_SYS_ADMIN)."""
    flags = MS_NOSUID | MS_NODEV | (MS_NOEXEC if noexec else 0)
    if _LIBC.mount(b"tmpfs", os.fsencode(target), b"tmpfs", flags, options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs ({options}): {os.strerror(err)}", str(target))


def detach(target: Path) -> None:
    """Lazily unmount `target` and everything mounted below it; a folder that is no mount point is left as is."""
    _LIBC.umount2(os.fsencode(target), MNT_DETACH)
