"""Importers for suites whose data lives outside the repository (read from a path the user gives)."""

from scenarios.importers import managerbench_official, odcv  # noqa: F401  (registers the suites)
