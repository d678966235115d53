"""Sandbox images built locally (no registry). Populated by the sandbox providers' issue."""
