"""Gymnasium environments over sandboxed worlds. `gymnasium.make("SafetySandbox-v0", scenario=...)`."""

import gymnasium

ENV_ID = "SafetySandbox-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="envs.env:SafetyEnv", disable_env_checker=False)
