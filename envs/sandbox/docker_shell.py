"""The host's end of a docker sandbox's persistent shell (envs/sandbox/shell_server.py runs inside): one
`docker exec -i` started with the container, then one request and one reply per command over its attached stream,
so a command costs no engine round trip beyond the stream's own bytes.

Frames are the server's (a 4-byte length, a JSON header, the blobs it lists); the engine wraps the server's stdout
and stderr in its own 8-byte stream headers, which are taken off here.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

SERVER_SOURCE = (Path(__file__).with_name("shell_server.py")).read_bytes()
# The server's source comes first on its stdin (`$1` bytes, read exactly, never ahead), so its command line stays
# short in the agent's `ps`; its config is `$2`.
BOOTSTRAP = ("import os, sys\nsize, source = int(sys.argv[1]), b''\nwhile len(source) < size:\n"
             "    chunk = os.read(0, size - len(source))\n    if not chunk:\n        sys.exit(1)\n"
             "    source += chunk\nexec(compile(source, 'shell_server', 'exec'))\n")
START_TIMEOUT_S = 30.0
CHUNK = 1 << 18
STDERR_KEPT = 4096


class ShellLost(RuntimeError):
    """The shell server is gone or did not answer in time; the sandbox cannot be trusted any more."""


class ShellChannel:
    """A started shell server, spoken to one request at a time."""

    def __init__(self, api: Any, container_id: str, config: dict[str, Any], environment: dict[str, str]) -> None:
        self._lock = threading.Lock()
        self._stdout = bytearray()  # the server's stdout, unwrapped, not yet parsed
        self._pending = bytearray()  # raw bytes from the engine, not yet unwrapped
        self._stderr = bytearray()
        self._closed = False
        argv = ["python3", "-I", "-S", "-c", BOOTSTRAP, str(len(SERVER_SOURCE)), json.dumps(config)]
        exec_id = api.exec_create(container_id, argv, stdin=True, user="0:0", environment=environment,
                                  workdir="/")["Id"]
        self._sock = api.exec_start(exec_id, socket=True)
        self._raw: socket.socket = getattr(self._sock, "_sock", self._sock)
        self._raw.sendall(SERVER_SOURCE)
        response = getattr(self._sock, "_response", None)
        self._response = response
        # Read through the HTTP response's buffered reader: it may already hold the first frames.
        self._reader = response.raw._fp.fp if response is not None else self._sock
        try:
            hello, _ = self._receive(time.monotonic() + START_TIMEOUT_S)
        except ShellLost:
            self.close()
            raise
        if not hello.get("ready"):
            self.close()
            raise ShellLost(f"the shell server did not start: {hello}")
        self.pid: int = hello["pid"]  # in the container's pid namespace

    def request(self, header: dict[str, Any], blobs: tuple[bytes, ...] = (),
                bound_s: float = START_TIMEOUT_S) -> tuple[dict[str, Any], list[bytes]]:
        """Send one request; its reply (header, blobs). Raises ShellLost if the server is gone or does not answer
        within `bound_s` (then the channel is closed)."""
        with self._lock:
            if self._closed:
                raise ShellLost("the shell server was closed")
            header = {**header, "blobs": [len(blob) for blob in blobs]}
            data = json.dumps(header).encode()
            try:
                self._raw.settimeout(bound_s)
                self._raw.sendall(len(data).to_bytes(4, "big") + data)
                for blob in blobs:
                    self._raw.sendall(blob)
                reply, out = self._receive(time.monotonic() + bound_s)
            except (OSError, ShellLost) as exc:
                self._close_locked()
                raise ShellLost(f"{exc}{self._stderr_note()}") from exc
            if "error" in reply:
                self._close_locked()
                raise ShellLost(f"the shell server failed: {reply['error']}")
            return reply, out

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    @property
    def closed(self) -> bool:
        return self._closed

    # ---- reading ---------------------------------------------------------------------------------------
    def _receive(self, deadline: float) -> tuple[dict[str, Any], list[bytes]]:
        size = int.from_bytes(self._read_exact(4, deadline), "big")
        header = json.loads(self._read_exact(size, deadline))
        return header, [self._read_exact(n, deadline) for n in header.get("blobs", [])]

    def _read_exact(self, size: int, deadline: float) -> bytes:
        while len(self._stdout) < size:
            self._fill(deadline)
        data = bytes(self._stdout[:size])
        del self._stdout[:size]
        return data

    def _fill(self, deadline: float) -> None:
        """Read more from the engine and unwrap its stream frames into stdout (and the kept end of stderr)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ShellLost("the shell server did not answer in time")
        self._raw.settimeout(remaining)
        try:
            chunk = self._reader.read1(CHUNK) if hasattr(self._reader, "read1") else self._reader.read(CHUNK)
        except TimeoutError:
            raise ShellLost("the shell server did not answer in time") from None
        if not chunk:
            raise ShellLost("the shell server ended")
        pending = self._pending
        pending += chunk
        start = 0
        while len(pending) - start >= 8:
            length = int.from_bytes(pending[start + 4:start + 8], "big")
            if len(pending) - start < 8 + length:
                break
            payload = pending[start + 8:start + 8 + length]
            if pending[start] == 2:
                self._stderr += payload
                del self._stderr[:-STDERR_KEPT]
            else:
                self._stdout += payload
            start += 8 + length
        del pending[:start]

    def _stderr_note(self) -> str:
        text = self._stderr.decode(errors="replace").strip()
        return f" (the server said: {text[-1000:]})" if text else ""

    def _close_locked(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._raw.shutdown(socket.SHUT_WR)  # the server reads its end of input and exits
        with contextlib.suppress(Exception):
            self._sock.close()
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.close()
