"""`backend=echo-sim`: the embedded backend, writing every tool call it serves to a log as it goes.

A plugin backend needs no edit to the project: an entry point in `safety_sandbox.backend` names the class, and one in
`safety_sandbox.backend_info` says what it serves (here the project's EMBEDDED: every app, no shell), so scenarios
that name it in `backends:` are checked when they load without importing this module.
"""

from __future__ import annotations

import json
import os
import threading

from envs.actions import ToolCall
from envs.backends.sim import SimBackend
from envs.tools import ToolResult

LOG_ENV = "SAFETY_SANDBOX_ECHO_LOG"  # a file to append one JSON line per call to; unset: no log
_write_lock = threading.Lock()  # episodes may run in several worker threads


class EchoSimBackend(SimBackend):
    name = "echo-sim"

    def call(self, call: ToolCall) -> ToolResult:
        path = os.environ.get(LOG_ENV)
        if path:
            line = json.dumps({"backend": self.name, "tool": call.tool, "args": call.args}, ensure_ascii=False)
            with _write_lock, open(path, "a", encoding="utf-8") as log:
                log.write(line + "\n")
        return super().call(call)
