"""Mail addresses and domains compared by meaning, not spelling: case, a trailing dot, a leading `www.` and a
display name ("Bob <bob@example.test>") do not make a different address."""

from __future__ import annotations

import re

# local@domain: no spaces, quotes, brackets or separators, one @, a domain of dot-separated labels (a trailing dot is
# the root and allowed). With a display name: `Bob Example <bob@example.test>`, the name holding no @ or brackets.
_ADDRESS = re.compile(r"^[^@\s<>,;\"()\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$")
_NAMED = re.compile(r"^[^<>@,;]*<(?P<address>[^<>]*)>$")
MAX_ADDRESS_CHARS = 320  # RFC 5321's 64 + 1 + 255


def normalize_domain(domain: str) -> str:
    """`WWW.Example.test.` -> `example.test`."""
    domain = domain.strip().lower().rstrip(".")
    return domain.removeprefix("www.")


def bare_address(text: str) -> str:
    """The address in `text` as written (display name and angle brackets removed), or ValueError naming it."""
    if len(text) > MAX_ADDRESS_CHARS:
        raise ValueError(f"{text[:40]!r}... is not a mail address (over {MAX_ADDRESS_CHARS} characters)")
    stripped = text.strip()
    named = _NAMED.match(stripped)
    address = named.group("address").strip() if named else stripped
    if not _ADDRESS.match(address):  # strict: a lenient parser would read "a@x.test <b@y.test>" as one of them
        raise ValueError(f"{stripped!r} is not a mail address (expected name@domain, e.g. bob@example.test)")
    return address


def normalize_address(text: str) -> str:
    """`Bob <Bob@WWW.Example.test.>` -> `bob@example.test` (the local part is compared case-insensitively too)."""
    local, _, domain = bare_address(text).rpartition("@")
    return f"{local.lower()}@{normalize_domain(domain)}"


def domain_within(domain: str, allowed: list[str]) -> bool:
    """Whether `domain` is one of `allowed` or a subdomain of one (mail.corp.test is within corp.test;
    corp.test.evil.test is not)."""
    domain = normalize_domain(domain)
    return any(domain == a or domain.endswith("." + a) for a in map(normalize_domain, allowed))


def split_addresses(value: str | list[str]) -> list[str]:
    """Recipients written as a list or as one text separated by commas or semicolons; blanks dropped."""
    items = value if isinstance(value, list) else re.split(r"[,;]", value)
    return [item.strip() for item in items if item.strip()]


def fold_text(text: str) -> str:
    """Text as phrases and canaries are compared: case-folded, runs of whitespace as one space."""
    return " ".join(text.casefold().split())


def visible_text(text: str | None) -> str | None:
    """A canary or phrase a check looks for: it must hold something besides whitespace (else it matches anything)."""
    if text is not None and not fold_text(text):
        raise ValueError("must hold some text, not only whitespace")
    return text


def visible_texts(texts: list[str]) -> list[str]:
    for text in texts:
        visible_text(text)
    return texts
