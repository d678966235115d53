"""Parsing Dockerfiles, and the model of the files a build leaves behind (see dockerfile.py)."""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from dataclasses import dataclass, field

from sandbox_images.derived import ContextFile
from scenarios.loader import ScenarioError

UMASK = 0o022
FILE_MODE = 0o644
EXEC_MODE = 0o755
GLOB_CHARS = re.compile(r"[*?\[]")
URL = re.compile(r"^(https?|ftp|git|ssh)://|^git@", re.IGNORECASE)
INSTALLERS = {"apt-get", "apt", "apk", "pip", "pip3", "conda", "mamba", "micromamba", "dpkg", "yum", "dnf",
              "microdnf", "npm", "gem", "uv", "pipx", "update-ca-certificates", "locale-gen"}
# Folders a package install cleans up after itself (`rm -rf /var/lib/apt/lists/*` and the like).
INSTALL_LEFTOVERS = ("/var/lib/apt", "/var/cache", "/root/.cache", "/tmp/", "/var/tmp/")
NO_FILE_EFFECT = {"true", ":", "set", "export", "umask", "chown", "chgrp", "useradd", "adduser", "groupadd",
                  "addgroup", "usermod", "groupmod", "passwd", "chpasswd", "echo", "printf", "ls", "cat", "sync"}
DROPPED = {"FROM", "USER", "CMD", "ENTRYPOINT", "EXPOSE", "HEALTHCHECK", "VOLUME", "STOPSIGNAL", "SHELL",
           "ONBUILD", "LABEL", "MAINTAINER"}
KEPT = {"RUN", "COPY", "ADD", "WORKDIR", "ENV", "ARG"}


@dataclass(frozen=True)
class Instruction:
    line: int  # 1-based line where the instruction starts
    keyword: str  # upper case
    args: str  # the arguments, continuation lines joined

    def show(self, limit: int = 120) -> str:
        text = f"{self.keyword} {self.args}".strip()
        return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Translation:
    """What `translate` makes of one Dockerfile."""

    dockerfile: str  # the generated Dockerfile (FROM the base image)
    context_files: dict[str, ContextFile]  # the generated build context, by relative path
    context_dirs: list[str]
    files: dict[str, tuple[bytes, int]]  # the model: every file the build leaves, by absolute path
    dirs: set[str]  # every folder the build makes (and their parents)
    placed_dirs: set[str]  # folders files were copied into or made by mkdir / WORKDIR
    workdir: str | None  # the final WORKDIR (None: never set)
    notes: list[str] = field(default_factory=list)  # dropped or changed lines ("Dockerfile:7: ...")
    unmodelled: list[str] = field(default_factory=list)  # kept RUN commands whose effect is not modelled


# ---- parsing ------------------------------------------------------------------------------------------------

def parse_dockerfile(text: str, where: str) -> list[Instruction]:
    """Instructions with their line numbers: comments and blank lines skipped, continuations joined."""
    lines = text.splitlines()
    escape = "\\"
    start = 0
    for i, line in enumerate(lines):  # parser directives: `# escape=` (and `# syntax=`, ignored) at the top
        match = re.match(r"^\s*#\s*(\w+)\s*=\s*(\S+)\s*$", line)
        if not match:
            break
        if match.group(1).lower() == "escape":
            escape = match.group(2)
        start = i + 1
    instructions: list[Instruction] = []
    i = start
    while i < len(lines):
        if _skipped(lines[i]):
            i += 1
            continue
        first = i
        parts = []
        line = lines[i]
        while True:
            stripped = line.rstrip()
            if not stripped.endswith(escape):
                parts.append(line)
                break
            parts.append(stripped[: -len(escape)])  # Docker joins continuation lines as they are
            i += 1
            while i < len(lines) and _skipped(lines[i]):  # comments inside a continued instruction
                i += 1
            if i >= len(lines):
                break
            line = lines[i]
        i += 1
        keyword, _, args = "".join(parts).strip().partition(" ")
        keyword = keyword.upper()
        if keyword in ("RUN", "COPY", "ADD") and re.search(r"<<-?\s*['\"]?[A-Za-z_]\w*", args):
            raise ScenarioError(f"{where}:{first + 1}: heredocs ({keyword} <<...) are not supported")
        instructions.append(Instruction(line=first + 1, keyword=keyword, args=args.strip()))
    return instructions


def _skipped(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


def expand(text: str, env: dict[str, str]) -> str:
    """Docker's variable substitution in COPY/ADD/WORKDIR/ENV: $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt}."""

    def repl(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        op, word = match.group(3), match.group(4) or ""
        value = env.get(name, "")
        if op == ":-":
            return value or word
        if op == ":+":
            return word if value else ""
        return value

    return re.sub(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])([^}]*))?\})", repl, text)


def key_values(args: str, where: str) -> list[tuple[str, str]]:
    """ENV / ARG arguments: `K=V K2="V 2"` or the legacy `ENV K V`."""
    try:
        words = shlex.split(args)
    except ValueError as exc:
        raise ScenarioError(f"{where}: cannot parse {args!r}: {exc}") from None
    if words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    return [(w.partition("=")[0], w.partition("=")[2]) for w in words]


# ---- the file model ----------------------------------------------------------------------------------------

# Folders the project's base image has, so `COPY x /usr/local/bin` copies into a folder as Docker does.
BASE_DIRS = ("/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/media", "/mnt", "/opt", "/proc", "/root", "/run",
             "/sbin", "/srv", "/sys", "/tmp", "/usr/bin", "/usr/include", "/usr/lib", "/usr/local/bin",
             "/usr/local/etc", "/usr/local/games", "/usr/local/include", "/usr/local/lib", "/usr/local/sbin",
             "/usr/local/share", "/usr/local/src", "/usr/sbin", "/usr/share", "/usr/src", "/var/cache", "/var/lib",
             "/var/log", "/var/tmp", "/workspace")


class FileModel:
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, int]] = {}
        self.dirs: set[str] = {"/"}
        for folder in BASE_DIRS:
            self.add_dir(folder)

    def add_dir(self, path: str) -> None:
        while path not in self.dirs:
            self.dirs.add(path)
            path = posixpath.dirname(path)

    def put(self, path: str, data: bytes, mode: int) -> None:
        self.add_dir(posixpath.dirname(path))
        self.files[path] = (data, mode)

    def is_dir(self, path: str) -> bool:
        return path in self.dirs

    def under(self, folder: str) -> list[str]:
        prefix = folder.rstrip("/") + "/"
        return [p for p in self.files if p.startswith(prefix)]

    def dirs_under(self, folder: str) -> list[str]:
        prefix = folder.rstrip("/") + "/"
        return [d for d in self.dirs if d.startswith(prefix)]

    def remove(self, path: str, recursive: bool) -> None:
        if path in self.files:
            del self.files[path]
        elif path in self.dirs and recursive and path != "/":
            for p in self.under(path):
                del self.files[p]
            for d in self.dirs_under(path):
                self.dirs.discard(d)
            self.dirs.discard(path)

    def glob(self, pattern: str) -> list[str]:
        """Shell globbing over the model (a `*` does not match a leading dot or a slash)."""
        parts = pattern.strip("/").split("/")
        found = ["/"]
        for part in parts:
            nxt = []
            for base in found:
                children = {p[len(base.rstrip("/")) + 1:].split("/")[0]
                            for p in [*self.files, *self.dirs] if p.startswith(base.rstrip("/") + "/")}
                for child in sorted(children):
                    if child.startswith(".") and not part.startswith("."):
                        continue
                    if fnmatch.fnmatchcase(child, part):
                        nxt.append(posixpath.join(base, child))
            found = nxt
        return sorted(found)


def apply_mode(spec: str, mode: int, is_dir: bool = False) -> int | None:
    """`chmod`'s MODE applied to `mode` (octal or symbolic, umask 022 when no who is given); None if invalid."""
    if re.fullmatch(r"[0-7]{1,4}", spec):
        return int(spec, 8)
    for clause in spec.split(","):
        match = re.fullmatch(r"([ugoa]*)((?:[-+=][rwxXst]*)+)", clause)
        if not match:
            return None
        who = match.group(1) or ""
        scope = 0
        for w in who or "a":
            scope |= {"u": 0o4700, "g": 0o2070, "o": 0o1007, "a": 0o7777}[w]
        if not who:
            scope &= ~UMASK
        for op, perms in re.findall(r"([-+=])([rwxXst]*)", match.group(2)):
            bits = 0
            for p in perms:
                if p == "X" and not (is_dir or mode & 0o111):
                    continue
                bits |= {"r": 0o444, "w": 0o222, "x": 0o111, "X": 0o111, "s": 0o6000, "t": 0o1000}[p]
            bits &= scope
            if op == "+":
                mode |= bits
            elif op == "-":
                mode &= ~bits
            else:
                mode = (mode & ~(scope & 0o777)) | bits
    return mode & 0o7777
