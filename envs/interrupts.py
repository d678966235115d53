"""Stopping a run cleanly: the first Ctrl-C (or SIGTERM) asks the run to stop between episodes, so no
write is cut in half; a second one raises KeyboardInterrupt at once."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopRequest:
    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt(f"signal {signum} again")
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
