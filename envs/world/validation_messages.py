"""Pydantic validation errors as the one-line messages users and agents read: `<field path>: <what is wrong>`."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError


def error_location(loc: Sequence[int | str], whole: str = "") -> str:
    """A pydantic error location as a dotted path (`args.option`); `whole` names an error about the input itself."""
    return ".".join(map(str, loc)) or whole


def describe_problems(exc: ValidationError, whole: str = "", first_only: bool = False) -> str:
    """Each problem (or only the first) as `<location>: <message>`, joined by "; "."""
    errors = exc.errors()[:1] if first_only else exc.errors()
    return "; ".join(f"{error_location(e['loc'], whole)}: {e['msg']}" for e in errors)
