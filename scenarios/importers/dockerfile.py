"""Reading a scenario's Dockerfile: a model of the files it places, and the same recipe rebased on our image.

An imported scenario (e.g. ODCV-Bench's) describes its world as a Dockerfile over a public base image that
installs packages from the network. We run it on the project's base image, with no network, so the importer
`translate`s the Dockerfile into:

- a generated Dockerfile `FROM` the base image: COPY/ADD of local sources kept (a URL is an error), RUN lines
  that only install packages dropped (the base image has python3, bash, coreutils, jq, bc), the other RUN
  lines, WORKDIR, ENV and ARG kept; FROM, USER, CMD, ENTRYPOINT, EXPOSE, HEALTHCHECK and the like dropped
  (the sandbox runs the agent as uid 1000 with its own command). Every dropped line is noted.
- a model of the files the build leaves behind (path -> bytes and mode) and the folders it makes, computed
  without an engine by following COPY/ADD with Docker's rules and the RUN commands scenario Dockerfiles use
  (mkdir, chmod, rm, mv, cp, touch, dos2unix, echo/printf into a file). Other RUN commands are kept in the
  image and noted as not modelled; the image build then checks the model against what the build did.

Sources named by the harness rather than the scenario (ODCV's command server, its templates and its
requirements.txt) are listed in `harness_sources` and dropped from COPY lines whether or not they exist.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
import shlex
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

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


def _key_values(args: str, where: str) -> list[tuple[str, str]]:
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


# ---- shell commands in RUN ----------------------------------------------------------------------------------

@dataclass
class _Word:
    parts: list[tuple[str, str | None]]  # (text, quote: None / "'" / '"')
    start: int
    end: int
    substitution: bool = False  # $(...) or `...`
    raw: str = ""  # as written

    def text(self, env: dict[str, str]) -> str:
        return "".join(t if q == "'" else expand(t, env) for t, q in self.parts)

    def pattern(self, env: dict[str, str]) -> str | None:
        """A glob pattern when an unquoted part holds glob characters (quoted parts escaped), else None."""
        if not any(q is None and GLOB_CHARS.search(t) for t, q in self.parts):
            return None
        return "".join(expand(t, env) if q is None else _glob_escape(t if q == "'" else expand(t, env))
                       for t, q in self.parts)


OPERATORS = ("&&", "||", ";", "|", "&", ">>", ">", "<", "(", ")")
DUPLICATION = re.compile(r"\d?[<>]&\d")


def _tokenize(command: str) -> list[_Word | str]:
    """Words and operators of a shell command (enough of POSIX sh for Dockerfile RUN lines)."""
    tokens: list[_Word | str] = []
    i, n = 0, len(command)
    while i < n:
        ch = command[i]
        if ch in " \t\n":
            i += 1
            continue
        if ch == "#" and (i == 0 or command[i - 1] in " \t\n"):
            break
        dup = DUPLICATION.match(command, i)
        if dup:  # `2>&1`, `>&2`: no file involved
            i = dup.end()
            continue
        op = next((o for o in OPERATORS if command.startswith(o, i)), None)
        if op is not None:
            tokens.append(op)
            i += len(op)
            continue
        word = _Word(parts=[], start=i, end=i)
        buf = ""
        while i < n and command[i] not in " \t\n" and not any(command.startswith(o, i) for o in OPERATORS):
            ch = command[i]
            if ch == "\\" and i + 1 < n:
                word.parts.append((buf, None))
                word.parts.append((command[i + 1], "'"))
                buf = ""
                i += 2
            elif ch in "'\"":
                end = command.find(ch, i + 1)
                if end < 0:
                    raise ValueError("unterminated quote")
                word.parts.append((buf, None))
                inner = command[i + 1:end]
                word.parts.append((inner, ch))
                word.substitution |= ch == '"' and ("$(" in inner or "`" in inner)
                buf = ""
                i = end + 1
            else:
                word.substitution |= ch == "`" or command.startswith("$(", i)
                buf += ch
                i += 1
        word.parts.append((buf, None))
        word.parts = [(t, q) for t, q in word.parts if t or q]
        word.end = i
        word.raw = command[word.start:i]
        if buf.isdigit() and len(word.parts) == 1 and DUPLICATION.match(command, word.start):
            i = DUPLICATION.match(command, word.start).end()
            continue
        if buf.isdigit() and len(word.parts) == 1 and i < n and command[i] in "<>":
            # `2>` or `2>>`: the digit belongs to the redirection
            tokens.append(buf + ">")
            i += 2 if command.startswith(">>", i) else 1
            continue
        tokens.append(word)
    return tokens


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


@dataclass
class _Segment:
    words: list[_Word]
    redirects: list[tuple[str, _Word]]
    text: str  # the segment's own source text


def _segments(command: str) -> tuple[list[_Segment], bool]:
    """The command split at && / ; / ||; the flag says whether it is too complex to model (pipes,
    subshells, background jobs, command substitution) — such a command is kept whole and not modelled."""
    tokens = _tokenize(command)
    complex_ = any(t in ("|", "(", ")", "&") for t in tokens if isinstance(t, str)) \
        or any(t.substitution for t in tokens if isinstance(t, _Word))
    segments: list[_Segment] = []
    current: list[_Word | str] = []

    def close() -> None:
        if not current:
            return
        words, redirects = [], []
        items = list(current)
        j = 0
        while j < len(items):
            item = items[j]
            if item in ("|", "&", "(", ")"):  # a complex command: kept whole, never modelled
                j += 1
                continue
            if isinstance(item, str):
                target = items[j + 1] if j + 1 < len(items) and isinstance(items[j + 1], _Word) else None
                if target is None:
                    raise ValueError(f"redirection {item!r} without a target")
                redirects.append((item, target))
                j += 2
                continue
            words.append(item)
            j += 1
        spans = [w for w in words] + [t for _, t in redirects]
        begin = min(w.start for w in spans) if spans else 0
        end = max(w.end for w in spans) if spans else 0
        segments.append(_Segment(words=words, redirects=redirects, text=command[begin:end]))
        current.clear()

    for token in tokens:
        if token in ("&&", "||", ";"):
            close()
        else:
            current.append(token)
    close()
    return segments, complex_ or "||" in tokens


def _is_install(argv: list[str]) -> bool:
    if not argv:
        return False
    name = posixpath.basename(argv[0])
    if name in INSTALLERS:
        return True
    if re.fullmatch(r"python[0-9.]*", name) and argv[1:3] == ["-m", "pip"]:
        return True
    if name == "rm":
        targets = [a for a in argv[1:] if not a.startswith("-")]
        return bool(targets) and all(t.startswith(INSTALL_LEFTOVERS) for t in targets)
    return False


class _Shell:
    """Applies the RUN commands it knows to the file model."""

    def __init__(self, model: FileModel, env: dict[str, str], cwd: str) -> None:
        self.model, self.env, self.cwd = model, env, cwd

    def abs(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.cwd, path)) if path else self.cwd

    def argv(self, words: list[_Word]) -> list[str]:
        out: list[str] = []
        for word in words:
            pattern = word.pattern(self.env)
            if pattern is not None:
                matches = self.model.glob(self.abs(pattern))
                if matches:
                    out.extend(matches if pattern.startswith("/") else
                               [posixpath.relpath(m, self.cwd) for m in matches])
                    continue
            out.append(word.text(self.env))
        return out

    def run(self, segment: _Segment) -> bool:
        """Apply one simple command; False when it is not modelled."""
        argv = self.argv(segment.words)
        if not argv:
            return True
        name = posixpath.basename(argv[0])
        args = argv[1:]
        writes = [(op, self.abs(t.text(self.env))) for op, t in segment.redirects
                  if t.text(self.env) != "/dev/null"]
        if name in ("echo", "printf") and writes:
            return self._echo(name, args, writes)
        if writes:
            return False
        handler = getattr(self, f"_{name.replace('-', '_')}", None)
        if name in ("mkdir", "chmod", "rm", "rmdir", "mv", "cp", "touch", "dos2unix", "cd") and handler:
            return handler(args)
        return name in NO_FILE_EFFECT

    @staticmethod
    def _split(args: list[str], with_value: Iterable[str] = ()) -> tuple[set[str], dict[str, str], list[str]]:
        flags: set[str] = set()
        values: dict[str, str] = {}
        operands: list[str] = []
        it = iter(args)
        ended = False
        for a in it:
            if ended or not a.startswith("-") or a == "-":
                operands.append(a)
            elif a == "--":
                ended = True
            elif a.startswith("--"):
                flags.add(a)
            else:
                for k, ch in enumerate(a[1:]):
                    if ch in with_value:
                        values[ch] = a[k + 2:] or next(it, "")
                        break
                    flags.add(ch)
        return flags, values, operands

    def _cd(self, args: list[str]) -> bool:
        self.cwd = self.abs(args[0]) if args else "/root"
        return True

    def _mkdir(self, args: list[str]) -> bool:
        _flags, _values, operands = self._split(args, with_value="m")
        for target in operands:
            self.model.add_dir(self.abs(target))
        return True

    def _chmod(self, args: list[str]) -> bool:
        spec = None
        recursive = False
        targets = []
        for a in args:
            if re.fullmatch(r"-[Rfvc]+", a) or a == "--recursive":
                recursive |= "R" in a or a == "--recursive"
            elif a.startswith("--"):
                continue  # --silent, --verbose, ...
            elif spec is None:
                spec = a  # 555, +x, u+w, even -w
            else:
                targets.append(self.abs(a))
        if spec is None:
            return False
        for target in targets:
            paths = [target] if target in self.model.files else self.model.under(target) if recursive else []
            for p in paths:
                data, mode = self.model.files[p]
                new = apply_mode(spec, mode)
                if new is None:
                    return False
                self.model.files[p] = (data, new)
        return True

    def _rm(self, args: list[str]) -> bool:
        flags, _values, operands = self._split(args)
        recursive = bool(flags & {"r", "R", "--recursive"})
        for target in operands:
            self.model.remove(self.abs(target), recursive)
        return True

    def _rmdir(self, args: list[str]) -> bool:
        for target in self._split(args)[2]:
            path = self.abs(target)
            if not self.model.under(path) and not self.model.dirs_under(path):
                self.model.dirs.discard(path)
        return True

    def _move(self, args: list[str], keep_source: bool) -> bool:
        flags, values, operands = self._split(args, with_value="tS")
        if len(operands) < 2 or "t" in values:
            return False
        *sources, dest = [self.abs(o) for o in operands]
        into = self.model.is_dir(dest)
        if len(sources) > 1 and not into:
            return False
        preserve = bool(flags & {"a", "p", "--archive"}) or not keep_source
        recursive = bool(flags & {"r", "R", "a", "--recursive", "--archive"}) or not keep_source
        for src in sources:
            target = posixpath.join(dest, posixpath.basename(src)) if into else dest
            if src in self.model.files:
                data, mode = self.model.files[src]
                if not preserve:
                    mode = self.model.files[target][1] if target in self.model.files else mode & ~UMASK
                if not keep_source:
                    del self.model.files[src]
                self.model.put(target, data, mode)
            elif self.model.is_dir(src) and recursive:
                moved = {p: self.model.files[p] for p in self.model.under(src)}
                dirs = self.model.dirs_under(src)
                if not keep_source:
                    self.model.remove(src, recursive=True)
                self.model.add_dir(target)
                for d in dirs:
                    self.model.add_dir(target + d[len(src):])
                for p, (data, mode) in moved.items():
                    self.model.put(target + p[len(src):], data, mode if preserve else mode & ~UMASK)
        return True

    def _mv(self, args: list[str]) -> bool:
        return self._move(args, keep_source=False)

    def _cp(self, args: list[str]) -> bool:
        return self._move(args, keep_source=True)

    def _touch(self, args: list[str]) -> bool:
        for target in self._split(args, with_value="dtr")[2]:
            path = self.abs(target)
            if path not in self.model.files and not self.model.is_dir(path):
                self.model.put(path, b"", 0o666 & ~UMASK)
        return True

    def _dos2unix(self, args: list[str]) -> bool:
        for target in self._split(args)[2]:
            path = self.abs(target)
            if path in self.model.files:
                data, mode = self.model.files[path]
                self.model.files[path] = (strip_carriage_returns(data), mode)
        return True

    def _echo(self, name: str, args: list[str], writes: list[tuple[str, str]]) -> bool:
        if any("\\" in a for a in args) and name == "echo":
            return False  # dash's echo interprets escapes: not modelled
        if name == "echo":
            newline = not (args and args[0] == "-n")
            text = " ".join(args[1:] if not newline else args) + ("\n" if newline else "")
        else:
            if len(args) != 1 or "%" in args[0]:
                return False
            text = args[0].replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")
        for op, path in writes:
            if op not in (">", ">>"):
                return False
            old = self.model.files.get(path)
            data = (old[0] if old and op == ">>" else b"") + text.encode()
            self.model.put(path, data, old[1] if old else 0o666 & ~UMASK)
        return True


def strip_carriage_returns(data: bytes) -> bytes:
    """What `sed -i 's/\\r$//'` (our stand-in for dos2unix) does: drop a carriage return that ends a line."""
    return re.sub(rb"\r(?=\n)|\r\Z", b"", data)


DOS2UNIX_STANDIN = "sed -i 's/\\r$//'"


# ---- COPY / ADD ---------------------------------------------------------------------------------------------

def _context_mode(path: Path) -> int:
    """The mode a context file gets in the generated context (and so in the image): 0755 if the checkout has it
    executable, else 0644, whatever the checkout's umask."""
    return EXEC_MODE if path.stat().st_mode & 0o111 else FILE_MODE


def _match_context(context: Path, pattern: str) -> list[str]:
    """Docker's source globbing (Go's filepath.Match per path segment; `*` also matches dotfiles)."""
    found = [""]
    for part in pattern.split("/"):
        nxt = []
        for base in found:
            folder = context / base if base else context
            if not folder.is_dir():
                continue
            for child in sorted(p.name for p in folder.iterdir()):
                if fnmatch.fnmatchcase(child, part):
                    nxt.append(posixpath.join(base, child) if base else child)
        found = nxt
    return found


@dataclass
class _Copy:
    flags: dict[str, str]
    sources: list[str]
    dest: str


def _parse_copy(ins: Instruction, env: dict[str, str], where: str) -> _Copy:
    args = ins.args
    flags: dict[str, str] = {}
    while args.startswith("--"):
        flag, _, args = args.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags[name] = value
        args = args.lstrip()
    if args.startswith("["):
        try:
            words = json.loads(args)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{where}: {ins.keyword} has a malformed JSON list: {exc}") from None
        if not all(isinstance(w, str) for w in words):
            raise ScenarioError(f"{where}: {ins.keyword}'s JSON list must hold strings")
    else:
        try:
            words = shlex.split(args)
        except ValueError as exc:
            raise ScenarioError(f"{where}: cannot parse {ins.keyword} arguments: {exc}") from None
    words = [expand(w, env) for w in words]
    if len(words) < 2:
        raise ScenarioError(f"{where}: {ins.keyword} needs a source and a destination")
    return _Copy(flags=flags, sources=words[:-1], dest=words[-1])


class _Translator:
    def __init__(self, dockerfile: Path, context: Path, label: str, from_line: str,
                 harness_sources: frozenset[str]) -> None:
        self.dockerfile, self.context, self.label = dockerfile, context, label
        self.harness = harness_sources
        self.model = FileModel()
        self.env: dict[str, str] = {}
        self.workdir: str | None = None
        self.out = [f"# Generated from {label} for the project's base image (no network).", from_line]
        self.context_files: dict[str, ContextFile] = {}
        self.context_dirs: set[str] = set()
        self.placed: set[str] = set()
        self.notes: list[str] = []
        self.unmodelled: list[str] = []
        self.seen_from = False

    @property
    def cwd(self) -> str:
        return self.workdir or "/"

    def where(self, ins: Instruction) -> str:
        return f"{self.label}:{ins.line}"

    def note(self, ins: Instruction, why: str) -> None:
        self.notes.append(f"{self.where(ins)}: {why}: {ins.show()}")

    def emit(self, ins: Instruction, text: str) -> None:
        self.out.append(f"# {self.label}:{ins.line}")
        self.out.append(text)

    def run(self) -> Translation:
        try:
            text = self.dockerfile.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"{self.label}: cannot read the Dockerfile: {exc}") from None
        for ins in parse_dockerfile(text, self.label):
            self.instruction(ins)
        if not self.seen_from:
            raise ScenarioError(f"{self.label}: no FROM instruction")
        return Translation(dockerfile="\n".join(self.out) + "\n", context_files=self.context_files,
                           context_dirs=sorted(self.context_dirs), files=dict(sorted(self.model.files.items())),
                           dirs=set(self.model.dirs), placed_dirs=self.placed, workdir=self.workdir,
                           notes=self.notes, unmodelled=self.unmodelled)

    def instruction(self, ins: Instruction) -> None:
        where = self.where(ins)
        if ins.keyword == "FROM":
            if self.seen_from:
                raise ScenarioError(f"{where}: a second FROM (multi-stage builds are not supported)")
            self.seen_from = True
            self.note(ins, "replaced by the project's base image")
        elif ins.keyword in DROPPED:
            self.note(ins, "dropped (the sandbox runs the agent as uid 1000 with its own command)"
                      if ins.keyword in ("USER", "CMD", "ENTRYPOINT") else "dropped")
        elif ins.keyword not in KEPT:
            raise ScenarioError(f"{where}: unknown instruction {ins.keyword}")
        elif not self.seen_from and ins.keyword != "ARG":
            raise ScenarioError(f"{where}: {ins.keyword} before FROM")
        elif ins.keyword in ("ENV", "ARG"):
            if not self.seen_from:
                return  # an ARG before FROM only serves FROM, which is replaced
            for key, value in _key_values(ins.args, where):
                if ins.keyword == "ENV" or key not in self.env:
                    self.env[key] = expand(value, self.env)
            self.emit(ins, f"{ins.keyword} {ins.args}")
        elif ins.keyword == "WORKDIR":
            path = posixpath.normpath(posixpath.join(self.cwd, expand(ins.args.strip("\"'"), self.env)))
            self.workdir = path
            self.model.add_dir(path)
            self.emit(ins, f"WORKDIR {path}")
        elif ins.keyword in ("COPY", "ADD"):
            self.copy(ins)
        else:
            self.run_line(ins)

    # ---- COPY / ADD
    def copy(self, ins: Instruction) -> None:
        where = self.where(ins)
        spec = _parse_copy(ins, self.env, where)
        for flag in spec.flags:
            if flag not in ("chown", "chmod", "link"):
                raise ScenarioError(f"{where}: {ins.keyword} --{flag} is not supported")
        if "chown" in spec.flags:
            self.note(ins, "--chown dropped (every file in the sandbox belongs to the agent)")
        for src in spec.sources:
            if URL.match(src):
                raise ScenarioError(f"{where}: {ins.keyword} from a URL ({src}) is not supported: the sandbox "
                                    "image is built with no network; download it into the scenario folder")
        kept = []
        for src in spec.sources:
            rel = posixpath.normpath(src.lstrip("/")) if src.strip("/") else "."
            if rel == ".." or rel.startswith("../"):
                raise ScenarioError(f"{where}: {ins.keyword} source {src!r} is outside the scenario folder")
            if rel.split("/")[0] in self.harness:
                self.note(ins, f"source {src} dropped (part of the benchmark's harness, not the scenario)")
                continue
            kept.append((src, rel))
        if not kept:
            return
        resolved: list[tuple[str, str]] = []  # (original source text, matched relative path)
        for src, rel in kept:
            if GLOB_CHARS.search(rel):
                matches = _match_context(self.context, rel)
                if not matches:
                    raise ScenarioError(f"{where}: {ins.keyword} source {src!r} matches no file in "
                                        f"{self.context}")
                resolved += [(src, m) for m in matches]
            else:
                if not (self.context / rel).exists() and not (self.context / rel).is_symlink():
                    raise ScenarioError(f"{where}: {ins.keyword} source {src!r} does not exist in {self.context}")
                resolved.append((src, rel))
        dest = spec.dest
        dest_abs = posixpath.normpath(posixpath.join(self.cwd, dest))
        into_dir = dest.endswith("/") or len(resolved) > 1 or self.model.is_dir(dest_abs)
        if len(resolved) > 1 and not dest.endswith("/"):
            raise ScenarioError(f"{where}: {ins.keyword} with several sources needs a destination ending in /")
        chmod = spec.flags.get("chmod")
        if chmod is not None and apply_mode(chmod, 0) is None:
            raise ScenarioError(f"{where}: {ins.keyword} --chmod={chmod} is not a mode")
        placed: list[str] = []
        for _src, rel in resolved:
            placed += self.place(ins, rel, dest_abs, into_dir)
        for path in placed:
            if chmod is not None:
                data, mode = self.model.files[path]
                self.model.files[path] = (data, apply_mode(chmod, mode))  # type: ignore[arg-type]
            self.placed.add(posixpath.dirname(path))
        sources = list(dict.fromkeys(src for src, _ in kept))
        self.emit(ins, f"{ins.keyword} {json.dumps([*sources, dest])}")
        if chmod is not None and placed:
            self.out.append(f"RUN {json.dumps(['chmod', chmod, *placed])}")
            self.note(ins, f"--chmod={chmod} applied by a RUN chmod after the copy")

    def place(self, ins: Instruction, rel: str, dest: str, into_dir: bool) -> list[str]:
        where = self.where(ins)
        path = self.context / rel if rel != "." else self.context
        if path.is_symlink():
            raise ScenarioError(f"{where}: {ins.keyword} source {rel} is a symbolic link (not supported)")
        if path.is_dir():
            placed = []
            self.model.add_dir(dest)
            self.placed.add(dest)
            self.context_dirs.add(rel)
            for child in sorted(path.rglob("*")):
                sub = child.relative_to(path).as_posix()
                crel = posixpath.join(rel, sub) if rel != "." else sub
                if child.is_symlink():
                    raise ScenarioError(f"{where}: {ins.keyword} source {crel} is a symbolic link (not supported)")
                if child.is_dir():
                    self.context_dirs.add(crel)
                    self.model.add_dir(posixpath.join(dest, sub))
                else:
                    placed.append(self.put_context_file(crel, child, posixpath.join(dest, sub)))
            return placed
        if ins.keyword == "ADD" and tarfile.is_tarfile(path):
            return self.extract(ins, rel, path, dest)
        target = posixpath.join(dest, posixpath.basename(rel)) if into_dir else dest
        return [self.put_context_file(rel, path, target)]

    def put_context_file(self, rel: str, path: Path, target: str) -> str:
        data = path.read_bytes()
        mode = _context_mode(path)
        self.context_files[rel] = ContextFile(data=data, mode=mode)
        self.model.put(target, data, mode)
        return target

    def extract(self, ins: Instruction, rel: str, path: Path, dest: str) -> list[str]:
        """ADD of a local archive unpacks it into `dest`."""
        self.context_files[rel] = ContextFile(data=path.read_bytes(), mode=_context_mode(path))
        placed = []
        self.model.add_dir(dest)
        with tarfile.open(path) as tar:
            for member in tar:
                name = posixpath.normpath(member.name.lstrip("/"))
                if name == ".." or name.startswith("../"):
                    raise ScenarioError(f"{self.where(ins)}: archive {rel} has a member outside its folder")
                target = posixpath.join(dest, name) if name != "." else dest
                if member.isdir():
                    self.model.add_dir(target)
                elif member.isreg():
                    fh = tar.extractfile(member)
                    self.model.put(target, fh.read() if fh else b"", stat.S_IMODE(member.mode))
                    placed.append(target)
                else:
                    self.notes.append(f"{self.where(ins)}: archive member {member.name} (not a regular file) "
                                      "is not modelled")
        return placed

    # ---- RUN
    def run_line(self, ins: Instruction) -> None:
        where = self.where(ins)
        if ins.args.startswith("["):
            try:
                argv = json.loads(ins.args)
            except json.JSONDecodeError as exc:
                raise ScenarioError(f"{where}: RUN has a malformed JSON list: {exc}") from None
            if _is_install(argv):
                self.note(ins, "dropped (package install; the image is built with no network)")
                return
            self.emit(ins, f"RUN {ins.args}")
            command = shlex.join(argv)
        else:
            command = ins.args
        try:
            segments, complex_ = _segments(command)
        except ValueError as exc:
            raise ScenarioError(f"{where}: cannot parse the RUN command: {exc}") from None
        shell = _Shell(self.model, dict(self.env), self.cwd)
        installs = [s for s in segments if _is_install(shell.argv(s.words))]
        neutral = [s for s in segments if [w.raw for w in s.words] in (["true"], [":"])]  # `... || true`
        if installs and len(installs) + len(neutral) == len(segments):
            self.note(ins, "dropped (package install; the image is built with no network)")
            return
        if ins.args.startswith("["):
            kept_segments = segments  # already emitted as written
        elif installs and complex_:
            kept_segments = segments
            self.emit(ins, f"RUN {command}")
            self.note(ins, "kept whole though it installs packages (too complex to split); it may fail")
        else:
            kept_segments = [s for s in segments if s not in installs]
            if installs:
                self.note(ins, "package installs dropped from it (the image is built with no network)")
            texts = [self.image_text(s) for s in kept_segments]
            if texts != [s.text for s in segments]:
                self.emit(ins, "RUN " + " && ".join(texts))
            else:
                self.emit(ins, f"RUN {command}")
        if complex_:
            self.unmodelled.append(f"{where}: {ins.show()}")
            return
        for segment in kept_segments:
            if not shell.run(segment):
                self.unmodelled.append(f"{where}: {segment.text[:120]}")
        self.placed |= _mkdir_targets(kept_segments, shell, self.cwd, self.env)

    def image_text(self, segment: _Segment) -> str:
        """A segment as the generated Dockerfile runs it: dos2unix (absent from the base image) becomes sed."""
        if segment.words and posixpath.basename(segment.words[0].text(self.env)) == "dos2unix":
            operands = [w.raw for w in segment.words[1:] if not w.text(self.env).startswith("-")]
            return f"{DOS2UNIX_STANDIN} {' '.join(operands)}"
        return segment.text


def _mkdir_targets(segments: list[_Segment], shell: _Shell, cwd: str, env: dict[str, str]) -> set[str]:
    """Folders a RUN line makes with mkdir (scenario folders the sandbox must have, even when empty)."""
    found: set[str] = set()
    local = _Shell(FileModel(), env, cwd)
    for segment in segments:
        argv = [w.text(env) for w in segment.words]
        if argv and posixpath.basename(argv[0]) == "cd" and len(argv) > 1:
            local.cwd = local.abs(argv[1])
        if argv and posixpath.basename(argv[0]) == "mkdir":
            found |= {local.abs(o) for o in _Shell._split(argv[1:], with_value="m")[2]}
    return {p for p in found if p in shell.model.dirs}


def translate(dockerfile: Path, context: Path, label: str, from_line: str,
              harness_sources: Iterable[str] = ()) -> Translation:
    """Read `dockerfile` (whose build context is `context`); `label` names it in messages and in the generated
    Dockerfile, `from_line` is the generated FROM."""
    return _Translator(dockerfile, context, label, from_line, frozenset(harness_sources)).run()
