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
import shlex
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sandbox_images.derived import ContextFile
from scenarios.importers.dockerfile_model import (
    DROPPED,
    EXEC_MODE,
    FILE_MODE,
    GLOB_CHARS,
    KEPT,
    URL,
    FileModel,
    Instruction,
    Translation,
    apply_mode,
    expand,
    key_values,
    parse_dockerfile,
)
from scenarios.importers.dockerfile_shell import DOS2UNIX_STANDIN, RunShell, Segment, is_install, split_segments
from scenarios.loader import ScenarioError

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
            for key, value in key_values(ins.args, where):
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
            if is_install(argv):
                self.note(ins, "dropped (package install; the image is built with no network)")
                return
            self.emit(ins, f"RUN {ins.args}")
            command = shlex.join(argv)
        else:
            command = ins.args
        try:
            segments, complex_ = split_segments(command)
        except ValueError as exc:
            raise ScenarioError(f"{where}: cannot parse the RUN command: {exc}") from None
        shell = RunShell(self.model, dict(self.env), self.cwd)
        installs = [s for s in segments if is_install(shell.argv(s.words))]
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

    def image_text(self, segment: Segment) -> str:
        """A segment as the generated Dockerfile runs it: dos2unix (absent from the base image) becomes sed."""
        if segment.words and posixpath.basename(segment.words[0].text(self.env)) == "dos2unix":
            operands = [w.raw for w in segment.words[1:] if not w.text(self.env).startswith("-")]
            return f"{DOS2UNIX_STANDIN} {' '.join(operands)}"
        return segment.text


def _mkdir_targets(segments: list[Segment], shell: RunShell, cwd: str, env: dict[str, str]) -> set[str]:
    """Folders a RUN line makes with mkdir (scenario folders the sandbox must have, even when empty)."""
    found: set[str] = set()
    local = RunShell(FileModel(), env, cwd)
    for segment in segments:
        argv = [w.text(env) for w in segment.words]
        if argv and posixpath.basename(argv[0]) == "cd" and len(argv) > 1:
            local.cwd = local.abs(argv[1])
        if argv and posixpath.basename(argv[0]) == "mkdir":
            found |= {local.abs(o) for o in RunShell._split(argv[1:], with_value="m")[2]}
    return {p for p in found if p in shell.model.dirs}


def translate(dockerfile: Path, context: Path, label: str, from_line: str,
              harness_sources: Iterable[str] = ()) -> Translation:
    """Read `dockerfile` (whose build context is `context`); `label` names it in messages and in the generated
    Dockerfile, `from_line` is the generated FROM."""
    return _Translator(dockerfile, context, label, from_line, frozenset(harness_sources)).run()
