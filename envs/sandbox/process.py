"""Run a host process with a timeout and a cap on captured output, killing its whole group on timeout.

Output past the cap is read and discarded so a chatty command can neither block nor fill memory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable

from envs.sandbox.base import ExecResult

CHUNK = 65536


def run_capped(argv: list[str], timeout_s: float, output_bytes: int, stdin: bytes | None = None,
               on_timeout: Callable[[], None] | None = None) -> ExecResult:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
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

    readers = [threading.Thread(target=drain, args=(n, getattr(proc, n)), daemon=True) for n in buffers]
    for reader in readers:
        reader.start()
    if stdin is not None:
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except BrokenPipeError:
            pass
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        if on_timeout:
            on_timeout()
        proc.wait()
    for reader in readers:
        reader.join(timeout=5)
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
