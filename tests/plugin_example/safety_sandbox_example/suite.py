"""The suite `example-plugin`: its scenario files live in the folder of that name beside this module."""

from scenarios.registry import SuiteFolder

SUITE = SuiteFolder.beside(__file__, "example-plugin")
