"""The ids that shipped suite files declare, read without validating the files, so that a run over one suite still
refuses an id another suite uses without loading that suite.

Each file's id is cached by the SHA-256 of the file's bytes in `$XDG_CACHE_HOME/safety-sandbox/scenario-ids.json`
(default `~/.cache`): a changed file has another digest, so a cached id is never served for other content; reading
and hashing a file costs a few microseconds where parsing its YAML costs milliseconds. A cache that cannot be read,
is corrupt or is of another format is ignored (and rewritten); one that cannot be written is left as it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from scenarios.loader import ScenarioError, parse_scenario_bytes, read_scenario_bytes

CACHE_FORMAT = 1
MAX_CACHE_BYTES = 4 * 1024 * 1024  # a bigger file is not ours to read
MAX_ENTRIES = 20_000


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"  # the XDG spec: ignore a relative path
    return root / "safety-sandbox" / "scenario-ids.json"


def declared_ids(files: list[Path]) -> list[tuple[str, Path]]:
    """(id, file) for each of `files` that declares a text id. A file that cannot be read or parsed, or that has no
    text id, is left out: loading its suite reports it, naming the file and the field."""
    cached = _read_cache()
    found: list[tuple[str, Path]] = []
    new: dict[str, str | None] = {}
    for path in files:
        try:
            raw = read_scenario_bytes(path)
        except ScenarioError:
            continue
        digest = hashlib.sha256(raw).hexdigest()
        if digest in cached:
            scenario_id = cached[digest]
        else:
            try:
                declared = parse_scenario_bytes(path, raw).get("id")
            except ScenarioError:
                continue  # not cached: a file that fails to parse is read again next time
            scenario_id = new[digest] = declared if isinstance(declared, str) else None
        if scenario_id is not None:
            found.append((scenario_id, path))
    if new:
        _write_cache({**cached, **new})
    return found


def _read_cache() -> dict[str, str | None]:
    path = cache_file()
    try:
        if path.stat().st_size > MAX_CACHE_BYTES:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, unreadable, not UTF-8 or not JSON
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("ids"), dict):
        return {}
    return {digest: sid for digest, sid in data["ids"].items()
            if isinstance(digest, str) and len(digest) == 64 and (sid is None or isinstance(sid, str))}


def _write_cache(ids: dict[str, str | None]) -> None:
    kept = dict(list(ids.items())[-MAX_ENTRIES:])  # the newest entries last
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".scenario-ids.", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"format": CACHE_FORMAT, "ids": kept}, handle)
        os.replace(temporary, path)  # atomic: a reader sees the old file or the new one, never half of one
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
