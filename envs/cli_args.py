"""Argument handling shared by every `python -m` entry point: bad input is one line on stderr and exit 2.

Two styles: argparse CLIs use `OneLineArgumentParser`; `key=value` CLIs use `split_key_values`.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import unicodedata
from collections.abc import Iterable
from typing import NoReturn

USAGE_ERROR = 2


class ArgumentError(ValueError):
    """A bad command-line argument; the message names it and, where it can, suggests a fix."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, except that an error is a single `error: ...` line (no usage block) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        argv = sys.argv[1:] if args is None else list(args)
        for arg in argv:
            if problem := control_character_problem(arg):
                self.error(f"argument {arg!r}: {problem}")
        return super().parse_args(argv, namespace)


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def one_line(error: BaseException | str) -> str:
    """An error message as one line: multi-line messages (e.g. every problem in a scenario file) are joined."""
    return "; ".join(part.strip() for part in str(error).splitlines() if part.strip())


def wants_help(argv: Iterable[str]) -> bool:
    return any(a in ("-h", "--help") for a in argv)


def control_character_problem(text: str) -> str | None:
    """Control characters (newlines, escapes, NUL; also invisible format characters such as bidi overrides and
    line separators) in an argument are a paste accident or an attack on the terminal or the log: name the
    first one rather than pass it on to paths, URLs or scenario ids."""
    for position, char in enumerate(text):
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return f"contains the control character {char!r} at position {position}"
    return None


def split_key_values(argv: list[str], known: Iterable[str], max_positional: int = 0,
                     ) -> tuple[list[str], dict[str, str]]:
    """`key=value` arguments (and up to `max_positional` bare words) with the checks every CLI needs:
    control characters, unknown keys (with a suggestion) and repeated keys are errors naming the key."""
    known = list(known)
    positional: list[str] = []
    values: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if problem := control_character_problem(arg):
            name = f"key {key!r}" if sep and control_character_problem(key) is None else f"argument {arg!r}"
            raise ArgumentError(f"{name}: {problem}")
        if not sep:
            if arg.startswith("-") or not max_positional:
                raise ArgumentError(f"arguments must be key=value, got {arg!r} (see --help)")
            if len(positional) >= max_positional:
                raise ArgumentError(f"unexpected argument {arg!r}: at most {max_positional} besides key=value "
                                    f"options, already got {', '.join(map(repr, positional))}")
            positional.append(arg)
            continue
        if not key:
            raise ArgumentError(f"argument {arg!r} has no key before '='")
        if key not in known:
            raise ArgumentError(f"unknown key {key!r}{suggest(key, known)}")
        if key in values:
            raise ArgumentError(f"key {key!r} given twice ({key}={values[key]!r} and {key}={value!r}); "
                                "give it once")
        values[key] = value
    return positional, values


def suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else f"; known keys: {', '.join(candidates)}"
