"""Scenario suites: the schema, the loader, variants as transforms, importers of published benchmarks, and the
shipped suites (YAML under scenarios/<suite>/). `python -m scenarios list` lists them."""
