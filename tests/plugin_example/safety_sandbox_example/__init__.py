"""An example plugin for the agentic safety sandbox (see its pyproject.toml for the entry points)."""
