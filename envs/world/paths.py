"""Whether a path lies under a root: the one rule every surface and importer uses to keep paths in their folders."""

from __future__ import annotations


def is_under(path: str, root: str) -> bool:
    """`path` is `root` itself or lies inside it. Both are normal absolute POSIX paths (normalise first: this
    compares text and consults no file system), so `/workspace2` is not under `/workspace`."""
    return path == root or path.startswith(root.rstrip("/") + "/")
