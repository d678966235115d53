"""Run a host process with a timeout and a cap on captured output, killing its whole group on timeout.

Output past the cap is read and discarded so a chatty command can neither block nor fill memory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable

from envs.sandbox.base import ExecResult

CHUNK = 65536


def run_capped(argv: list[str], timeout_s: float, output_bytes: int, stdin: bytes | None = None,
               on_timeout: Callable[[], None] | None = None, pass_fds: tuple[int, ...] = (),
               user: int | None = None, env: dict[str, str] | None = None, cwd: str | None = None) -> ExecResult:
    """Run `argv` (as host uid and gid `user`, with exactly `env`, in `cwd`, each if given), feeding it `stdin`. Returns
    within about `timeout_s` whatever the process does with its input and output. Raises OSError if it cannot
    start."""
    started = time.perf_counter()
    as_user = {} if user is None else {"user": user, "group": user, "extra_groups": []}
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            pass_fds=pass_fds, env=env, cwd=cwd, **as_user)
    buffers: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    overflow = {"stdout": False, "stderr": False}

    def drain(name: str, stream) -> None:
        buf = buffers[name]
        while chunk := stream.read1(CHUNK) if hasattr(stream, "read1") else stream.read(CHUNK):
            room = output_bytes - len(buf)
            if room > 0:
                buf.extend(chunk[:room])
            if len(chunk) > room:
                overflow[name] = True

    # Input is written from a thread, so a command that never reads it (e.g. blocked opening a FIFO) cannot
    # hold off the timeout; killing the command ends the write with EPIPE.
    def feed() -> None:
        with contextlib.suppress(OSError):
            proc.stdin.write(stdin)
        with contextlib.suppress(OSError):
            proc.stdin.close()

    threads = [threading.Thread(target=drain, args=(n, getattr(proc, n)), daemon=True) for n in buffers]
    if stdin is not None:
        threads.append(threading.Thread(target=feed, daemon=True))
    for thread in threads:
        thread.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        if on_timeout:
            on_timeout()
        proc.wait()
    for thread in threads:
        thread.join(timeout=5)
    return ExecResult(
        exit_code=None if timed_out else proc.returncode,
        stdout=buffers["stdout"].decode("utf-8", errors="replace"),
        stderr=buffers["stderr"].decode("utf-8", errors="replace"),
        timed_out=timed_out,
        output_truncated=overflow["stdout"] or overflow["stderr"],
        duration_s=time.perf_counter() - started,
    )


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def pid_alive(pid: int) -> bool:
    """Whether a process exists (sandbox resources are labelled with their owner's pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
