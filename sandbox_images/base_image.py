"""The project's base sandbox image, built locally (there is no registry): a Debian rootfs made by
debootstrap, given an unprivileged `agent` user (uid/gid 1000) and /workspace, then `docker import`ed.

The tag is a hash of the recipe, so changing the recipe builds a new image and an unchanged one is reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPOSITORY = "safety-sandbox/base"
RECIPE_VERSION = "1"  # bump when the steps below change in a way the other fields do not show
SUITE = "bookworm"
VARIANT = "minbase"
PACKAGES = ("bash", "coreutils", "python3", "jq", "bc", "procps", "findutils")
AGENT_UID = 1000
WORKDIR = "/workspace"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
LOCK_PATH = Path(tempfile.gettempdir()) / "safety-sandbox-base-image.lock"
DEBOOTSTRAP_TIMEOUT_S = 1200
IMPORT_CHANGES = ["ENV LANG=C.UTF-8", f"WORKDIR {WORKDIR}", 'CMD ["sleep", "infinity"]']


class BuildError(RuntimeError):
    """The image could not be built; the message carries the failing step's output."""


def recipe_hash() -> str:
    recipe = {"suite": SUITE, "variant": VARIANT, "packages": sorted(PACKAGES), "version": RECIPE_VERSION,
              "uid": AGENT_UID, "workdir": WORKDIR, "changes": IMPORT_CHANGES}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def image_tag() -> str:
    return f"{REPOSITORY}:{recipe_hash()}"


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 `URIs:` or one-line sources.list)."""
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        for line in deb822.read_text().splitlines():
            if line.startswith("URIs:"):
                for uri in line.split()[1:]:
                    if "security" not in uri:
                        return uri
    one_line = Path("/etc/apt/sources.list")
    if one_line.exists():
        for line in one_line.read_text().splitlines():
            match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
            if match and "security" not in match.group(1) and match.group(2) == SUITE:
                return match.group(1)
    return FALLBACK_MIRROR


def image_exists(client: Any, tag: str) -> bool:
    import docker

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_base_image(client: Any, log=None) -> str:
    """The base image's tag, building it first if this engine lacks it (concurrent callers wait)."""
    tag = image_tag()
    if image_exists(client, tag):
        if log is not None:
            _say(log, f"{tag} is cached")
        return tag
    LOCK_PATH.touch(exist_ok=True)
    with LOCK_PATH.open() as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not image_exists(client, tag):  # another process may have built it while we waited
            build(client, tag, log)
    return tag


def build(client: Any, tag: str, log=None) -> None:
    if shutil.which("debootstrap") is None:
        raise BuildError("building the base image needs debootstrap: apt-get install debootstrap")
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(prefix="safety-sandbox-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _say(log, f"debootstrap {SUITE} ({VARIANT}, {', '.join(PACKAGES)}) from {mirror} ...")
        argv = ["debootstrap", f"--variant={VARIANT}", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), mirror]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise BuildError(f"debootstrap took longer than {DEBOOTSTRAP_TIMEOUT_S}s") from exc
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
            raise BuildError(f"debootstrap failed ({done.returncode}):\n{tail}")
        _customise(rootfs)
        _say(log, f"importing the rootfs as {tag} ...")
        _import(client, rootfs, tag)
    client.images.get(tag).tag(REPOSITORY, "latest")
    _say(log, f"built {tag} (also tagged {REPOSITORY}:latest)")


def _customise(rootfs: Path) -> None:
    """The agent user, the work dir, and no apt caches (the image never installs anything)."""
    with (rootfs / "etc/passwd").open("a") as fh:
        fh.write(f"agent:x:{AGENT_UID}:{AGENT_UID}:agent:{WORKDIR}:/bin/bash\n")
    with (rootfs / "etc/group").open("a") as fh:
        fh.write(f"agent:x:{AGENT_UID}:\n")
    shadow = rootfs / "etc/shadow"
    if shadow.exists():
        with shadow.open("a") as fh:
            fh.write("agent:!:19000:0:99999:7:::\n")
    workdir = rootfs / WORKDIR.lstrip("/")
    workdir.mkdir(exist_ok=True)
    os.chown(workdir, AGENT_UID, AGENT_UID)
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (rootfs / cache).glob("*"):
            if item.is_file():
                item.unlink()


def _import(client: Any, rootfs: Path, tag: str) -> None:
    repository, _, version = tag.partition(":")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)

    def chunks():
        while chunk := tar.stdout.read(1 << 20):
            yield chunk

    try:
        client.api.import_image_from_stream(chunks(), repository=repository, tag=version, changes=IMPORT_CHANGES)
    finally:
        with contextlib.suppress(Exception):
            tar.stdout.close()
        stderr = tar.stderr.read().decode(errors="replace")
        if tar.wait() != 0:
            raise BuildError(f"tar of the rootfs failed: {stderr.strip()}")


def _say(log, text: str) -> None:
    print(text, file=log or sys.stderr, flush=True)
