"""Images derived from the base image: a generated build context (a Dockerfile `FROM` the base image plus the
files it copies), built on the local engine with no network and tagged by a hash of the whole context.

Importers describe such an image (a `DerivedImage`) and `register` it when they load a scenario, which needs
no engine; the docker provider calls `ensure_derived_image` the first time a sandbox asks for the tag. An
unchanged context reuses the image already on the engine.

After a build the image's files under `roots` are compared with what the importer expects them to be (the
scenario's seeded files): the sandbox serves those folders from the scenario's files, so an importer whose
reading of a Dockerfile differs from what the build did fails here, loudly, rather than running an episode
on a world that is not the one the Dockerfile describes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import posixpath
import stat
import sys
import tarfile
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox_images.base_image import BuildError, ensure_base_image, image_exists, image_tag

LOCK_DIR = Path(tempfile.gettempdir())
MAX_DIFFERENCES_SHOWN = 10


class DerivedImageError(RuntimeError):
    """A derived image could not be built, or does not hold what its importer expects."""


@dataclass(frozen=True)
class ContextFile:
    data: bytes
    mode: int  # the file's mode in the build context (COPY keeps it)


@dataclass(frozen=True, eq=False)
class DerivedImage:
    repository: str  # e.g. "safety-sandbox/odcv-warehouse-audit-mandated"
    dockerfile: str  # the generated Dockerfile, whose FROM names `image_tag()` (the base image)
    files: Mapping[str, ContextFile]  # build-context files by relative POSIX path
    dirs: tuple[str, ...] = ()  # empty folders of the build context
    roots: tuple[str, ...] = ()  # folders whose content is checked after the build...
    expected: Mapping[str, tuple[str, int]] = field(default_factory=dict)  # ...to be exactly {path: (sha256, mode)}
    source: str = ""  # where the recipe came from (for messages), e.g. the original Dockerfile's path
    broken: str = ""  # why it cannot be built (its scenario could not be imported); empty when it can

    def context_hash(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.dockerfile.encode())
        for path in sorted(self.files):
            entry = self.files[path]
            digest.update(f"\0{path}\0{entry.mode:o}\0{hashlib.sha256(entry.data).hexdigest()}".encode())
        digest.update(json.dumps(sorted(self.dirs)).encode())
        return digest.hexdigest()[:12]

    @property
    def tag(self) -> str:
        return f"{self.repository}:{self.context_hash()}"


_RECIPES: dict[str, DerivedImage] = {}
_LOCKS: dict[str, threading.Lock] = {}
_REGISTRY_LOCK = threading.Lock()


def base_from_line() -> str:
    return f"FROM {image_tag()}"


def register(image: DerivedImage) -> str:
    """Make `image` buildable by its tag in this process (no engine needed); returns the tag."""
    tag = image.tag
    with _REGISTRY_LOCK:
        _RECIPES[tag] = image
    return tag


def register_broken(repository: str, problem: str, source: str = "") -> str:
    """Register a tag whose build fails at once with `problem`: a scenario that could not be imported still
    lists, and each of its episodes ends in an error that says why instead of running."""
    return register(DerivedImage(repository=repository, dockerfile=f"# cannot be built: {problem}\n",
                                 files={}, source=source, broken=problem))


def recipe_for(tag: str) -> DerivedImage | None:
    with _REGISTRY_LOCK:
        return _RECIPES.get(tag)


def ensure_derived_image(client: Any, tag: str, log=None) -> str:
    """The registered image `tag`, built (and checked) first unless the engine has it."""
    recipe = recipe_for(tag)
    if recipe is None:
        raise DerivedImageError(f"no recipe for {tag} in this process; load its scenario first")
    if recipe.broken:
        raise DerivedImageError(f"{recipe.source or tag} cannot be built: {recipe.broken}")
    if image_exists(client, tag):
        return tag
    with _REGISTRY_LOCK:
        lock = _LOCKS.setdefault(tag, threading.Lock())
    lock_path = LOCK_DIR / f"safety-sandbox-derived-{hashlib.sha256(tag.encode()).hexdigest()[:16]}.lock"
    lock_path.touch(exist_ok=True)
    with lock, lock_path.open() as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # another process may be building the same image
        if not image_exists(client, tag):
            build(client, recipe, log)
    return tag


def build(client: Any, recipe: DerivedImage, log=None) -> None:
    import docker

    try:
        base = ensure_base_image(client)
    except BuildError as exc:
        raise DerivedImageError(f"could not build the base image: {exc}") from exc
    if f"FROM {base}" not in recipe.dockerfile.splitlines():
        raise DerivedImageError(f"{recipe.tag}: its Dockerfile is not FROM the base image {base}")
    tag = recipe.tag
    _say(log, f"building {tag} from {recipe.source or 'a generated context'} (no network) ...")
    with tempfile.TemporaryDirectory(prefix="safety-sandbox-context-") as tmp:
        root = Path(tmp)
        (root / "Dockerfile").write_text(recipe.dockerfile, encoding="utf-8")
        for rel in recipe.dirs:
            (root / rel).mkdir(parents=True, exist_ok=True)
        for rel, entry in recipe.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(entry.data)
            path.chmod(entry.mode)
        try:
            client.images.build(path=str(root), dockerfile="Dockerfile", tag=tag, network_mode="none", rm=True,
                                forcerm=True, pull=False)
        except docker.errors.BuildError as exc:
            lines = [str(item.get("stream") or item.get("error") or "").rstrip() for item in exc.build_log]
            tail = "\n".join(line for line in lines if line)[-3000:]
            raise DerivedImageError(f"building {tag} from {recipe.source} failed: {exc.msg}\n{tail}") from None
        except (docker.errors.DockerException, OSError) as exc:
            raise DerivedImageError(f"building {tag} from {recipe.source} failed: {exc}") from exc
    differences = compare_roots(client, recipe)
    if differences:
        with contextlib.suppress(Exception):
            client.images.remove(tag, force=True)
        shown = "; ".join(differences[:MAX_DIFFERENCES_SHOWN])
        more = f" (and {len(differences) - MAX_DIFFERENCES_SHOWN} more)" if len(differences) > MAX_DIFFERENCES_SHOWN \
            else ""
        raise DerivedImageError(f"{tag} (from {recipe.source}) does not hold the files its scenario seeds: "
                                f"{shown}{more}")
    _say(log, f"built {tag}")


def image_files(client: Any, tag: str, roots: tuple[str, ...]) -> dict[str, tuple[str, int]]:
    """Every regular file under `roots` in image `tag`: {absolute path: (sha256, mode)}."""
    import docker

    container = client.containers.create(tag, ["true"], network_disabled=True)
    found: dict[str, tuple[str, int]] = {}
    try:
        for root in roots:
            try:
                stream, _stat = container.get_archive(root)
            except docker.errors.NotFound:
                continue
            parent = posixpath.dirname(root.rstrip("/")) or "/"
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r:") as tar:
                for member in tar:
                    if not member.isreg():
                        continue
                    fh = tar.extractfile(member)
                    data = fh.read() if fh is not None else b""
                    found[posixpath.join(parent, member.name)] = (hashlib.sha256(data).hexdigest(),
                                                                  stat.S_IMODE(member.mode))
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)
    return found


def compare_roots(client: Any, recipe: DerivedImage) -> list[str]:
    """How the built image's files under the recipe's roots differ from what it expects (empty: they agree)."""
    actual = image_files(client, recipe.tag, recipe.roots)
    problems = []
    for path in sorted(set(recipe.expected) | set(actual)):
        want, got = recipe.expected.get(path), actual.get(path)
        if got is None:
            problems.append(f"{path} missing from the image")
        elif want is None:
            problems.append(f"{path} is in the image but not in the scenario")
        elif want[0] != got[0]:
            problems.append(f"{path} has other content in the image")
        elif want[1] != got[1]:
            problems.append(f"{path} has mode {got[1]:o} in the image, {want[1]:o} in the scenario")
    return problems


def _say(log, text: str) -> None:
    print(text, file=log or sys.stderr, flush=True)
