"""The RUN commands scenario Dockerfiles use, followed on the file model without running them (see dockerfile.py)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

from scenarios.importers.dockerfile_model import (
    GLOB_CHARS,
    INSTALL_LEFTOVERS,
    INSTALLERS,
    NO_FILE_EFFECT,
    UMASK,
    FileModel,
    apply_mode,
    expand,
)

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
class Segment:
    words: list[_Word]
    redirects: list[tuple[str, _Word]]
    text: str  # the segment's own source text


def split_segments(command: str) -> tuple[list[Segment], bool]:
    """The command split at && / ; / ||; the flag says whether it is too complex to model (pipes,
    subshells, background jobs, command substitution) — such a command is kept whole and not modelled."""
    tokens = _tokenize(command)
    complex_ = any(t in ("|", "(", ")", "&") for t in tokens if isinstance(t, str)) \
        or any(t.substitution for t in tokens if isinstance(t, _Word))
    segments: list[Segment] = []
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
        segments.append(Segment(words=words, redirects=redirects, text=command[begin:end]))
        current.clear()

    for token in tokens:
        if token in ("&&", "||", ";"):
            close()
        else:
            current.append(token)
    close()
    return segments, complex_ or "||" in tokens


def is_install(argv: list[str]) -> bool:
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


class RunShell:
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

    def run(self, segment: Segment) -> bool:
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
