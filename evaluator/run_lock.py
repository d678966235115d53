"""One writer per run folder: a run (and `evaluator.score --write`) holds an exclusive lock on <out>/run.lock.

Two runs on the same folder would rewrite trajectories.jsonl under each other and collide in the store.
The lock is fcntl's, so the kernel drops it when its holder dies: a killed run never blocks the next one.
The holder writes its pid into the file so the refused run can name it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

LOCK_NAME = "run.lock"


class RunFolderBusy(RuntimeError):
    """Another live process holds the run folder."""


class RunFolderLock:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunFolderLock:
        """Take the lock or raise RunFolderBusy at once (never wait); OSError if the folder is not writable."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise RunFolderBusy(f"{self.folder} is in use by another run{who}; wait for it to finish or "
                                "choose another out=") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __enter__(self) -> RunFolderLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
