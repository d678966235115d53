"""The observation an agent reads after each desktop action: where it is (URL, title, open tabs), what the page
holds (the accessibility tree with element refs), and the last action's error."""

from __future__ import annotations

import re

from pydantic import BaseModel

from envs.spaces import clip_text

MAX_TREE_CHARS = 24_000  # a page's tree beyond this is cut (the tail says so)
_REF = re.compile(r"\[ref=((?:f[0-9]+)?e[0-9]+)\]")


class TabView(BaseModel):
    index: int
    title: str
    url: str
    active: bool


class PageView(BaseModel):
    url: str
    title: str
    tabs: list[TabView]
    tree: str


def refs_in(snapshot: str) -> frozenset[str]:
    """The element refs an accessibility snapshot shows (the `bid`s an action may name)."""
    return frozenset(_REF.findall(snapshot))


def observation_text(view: PageView, error: str | None = None) -> str:
    tabs = "\n".join(f"  [{t.index}]{' (active)' if t.active else ''} {t.title or '(untitled)'} - {t.url}"
                     for t in view.tabs)
    parts = [f"URL: {view.url}", f"Title: {view.title}", f"Tabs:\n{tabs}",
             f"Page (accessibility tree; act on an element by its ref, e.g. bid e12):\n"
             f"{clip_text(view.tree, MAX_TREE_CHARS)}"]
    if error:
        parts.append(f"Last action error: {error}")
    return "\n".join(parts)
