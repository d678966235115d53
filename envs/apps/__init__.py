"""Apps as units: each module is one app (its tools, its episode hooks) over a state model in envs.world, registered
through the entry-point group `safety_sandbox.app` (see pyproject.toml and envs/world/app.py)."""
