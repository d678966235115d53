"""Importers for suites whose data lives outside the repository (read from a path the user gives). Each is found by
name through the entry-point group `safety_sandbox.suite` (see pyproject.toml), so importing this package imports
none of them."""
