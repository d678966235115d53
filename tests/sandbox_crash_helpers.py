"""Breaking an episode's real sandbox from outside, for the tests of what a crash leaves behind."""

from __future__ import annotations

import shutil

from envs.env import SafetyEnv


def kill_sandbox(env: SafetyEnv) -> None:
    """Destroy the episode's sandbox from outside, as a crash or an operator would."""
    sandbox = env._backend._sandbox  # noqa: SLF001 - the test reaches in to break it
    if env.backend_name == "docker":
        sandbox.container.remove(force=True)
    else:
        shutil.rmtree(sandbox._host, ignore_errors=True)  # noqa: SLF001
        sandbox._closed = True  # noqa: SLF001
