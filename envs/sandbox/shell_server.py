"""The shell server that runs inside each docker sandbox (its source is sent on the stdin of `python3 -I -S`, see
docker_shell.BOOTSTRAP, with its JSON config as the last argument; the host never imports it, so it uses the
standard library only and nothing of the project).

It runs as the container's root, which holds only CAP_SETUID/SETGID (to start the agent's commands as the agent),
CAP_KILL (to end them) and CAP_DAC_READ_SEARCH (to read back files the agent locked away), and never runs a
command of its own. The agent (uid 1000, no capabilities, no way to gain any) can neither signal it, nor open its
pipes through /proc, nor ptrace it. Every request runs a program as the agent; when it ends (or runs past its
timeout) every process of the agent is killed, then the roots are scanned (inode, size, mode, mtime and ctime of
each regular file: a rewrite that restores size and mtime still moves ctime), and the reply names what changed.
The contents of what changed are sent only when the host asks (when the world is read).

Protocol, both ways, over stdin/stdout: a frame is a 4-byte big-endian length, that many bytes of JSON (the
header), then the blobs whose lengths the header lists under "blobs", back to back.
"""

import contextlib
import hashlib
import json
import os
import selectors
import signal
import stat
import subprocess
import sys
import time

CHUNK = 65536
SCRIPT = "@SCRIPT@"  # in a run request's argv: the path of the memory file holding its script
DRAIN_S = 2.0  # after the agent's processes are killed, its pipes close at once; bound it all the same
KILL_ROUNDS = 500
FORK_RETRY_S = 0.01  # between tries to start a command while the process limit is still taken


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Channel:
    def __init__(self):
        self.inp = sys.stdin.fileno()
        self.out = sys.stdout.fileno()

    def read_exact(self, size):
        parts = []
        while size:
            chunk = os.read(self.inp, min(size, 1 << 20))
            if not chunk:
                raise EOFError
            parts.append(chunk)
            size -= len(chunk)
        return b"".join(parts)

    def receive(self):
        header = json.loads(self.read_exact(int.from_bytes(self.read_exact(4), "big")))
        return header, [self.read_exact(size) for size in header.get("blobs", [])]

    def send(self, header, blobs=()):
        header["blobs"] = [len(blob) for blob in blobs]
        data = json.dumps(header).encode()
        for part in (len(data).to_bytes(4, "big"), data, *blobs):
            write_all(self.out, part)


class Server:
    def __init__(self, config):
        self.uid = config["uid"]
        self.roots = config["roots"]
        self.env = config["env"]
        self.readback = config["readback_bytes"]
        self.signatures = {}  # path -> (inode, size, mode, mtime, ctime) at the last scan
        self.unread = set()  # changed since the host last read the contents
        self.gone = set()  # removed since then
        self.scan_roots()
        self.unread = set(self.signatures)

    # ---- the agent's processes -----------------------------------------------------------------------
    def agent_processes(self):
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or name == "1":
                continue
            try:
                if os.stat(f"/proc/{name}").st_uid != self.uid:
                    continue
                with open(f"/proc/{name}/stat", "rb") as fh:
                    state = fh.read().rpartition(b")")[2].split()[0]
            except (OSError, IndexError):
                continue
            if state not in (b"Z", b"X"):  # a zombie is over; its parent (or init) reaps it
                pids.append(int(name))
        return pids

    def end_agent_processes(self):
        """Kill every process of the agent (a fork bomb's children too: repeat until none is left)."""
        for _ in range(KILL_ROUNDS):
            pids = self.agent_processes()
            if not pids:
                return True
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            self.reap()
            time.sleep(0.001)
        return False

    @staticmethod
    def reap():
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass

    # ---- running a program as the agent ----------------------------------------------------------------
    def run(self, request, blobs):
        """Run argv as the agent in cwd, fed the last blob, each stream kept up to `cap` bytes. With `script`, the
        first blob is put in a memory file the command reads, and SCRIPT in argv is replaced by its path."""
        cap = request["cap"]
        started = time.monotonic()
        deadline = started + request["timeout"]
        argv, pass_fds = request["argv"], ()
        if request.get("script"):
            script = os.memfd_create("command", 0)  # inherited by the command only (pass_fds)
            write_all(script, blobs[0])
            os.lseek(script, 0, os.SEEK_SET)
            argv, pass_fds = [arg.replace(SCRIPT, f"/dev/fd/{script}") for arg in argv], (script,)
        stdin = blobs[-1] if blobs else b""
        try:
            while True:
                try:
                    # No input at all (not an empty pipe) where the host sends none, as `docker exec` without -i would.
                    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if request["stdin"] else subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=request["cwd"],
                                            env=self.env, user=self.uid, group=self.uid, extra_groups=[],
                                            start_new_session=True, pass_fds=pass_fds)
                    break
                except BlockingIOError:
                    # The process limit is still taken by the last command's processes (a fork bomb's), killed but
                    # not all released yet: wait for them, within this command's time.
                    if time.monotonic() + FORK_RETRY_S >= deadline:
                        raise
                    self.end_agent_processes()
                    time.sleep(FORK_RETRY_S)
        finally:
            for fd in pass_fds:
                os.close(fd)
        exited = os.pidfd_open(proc.pid)
        out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        kept = {out_fd: bytearray(), err_fd: bytearray()}
        truncated = False
        timed_out = False
        pending = memoryview(stdin)
        sel = selectors.DefaultSelector()
        sel.register(exited, selectors.EVENT_READ)
        for fd in kept:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        stdin_fd = proc.stdin.fileno() if proc.stdin else -1
        if pending:
            os.set_blocking(stdin_fd, False)
            sel.register(stdin_fd, selectors.EVENT_WRITE)
        elif proc.stdin:
            proc.stdin.close()

        def take(fd):
            nonlocal truncated
            try:
                chunk = os.read(fd, CHUNK)
            except BlockingIOError:
                return True
            if not chunk:
                sel.unregister(fd)
                return False
            buf = kept[fd]
            room = cap - len(buf)
            if room > 0:
                buf += chunk[:room]
            if len(chunk) > room:
                truncated = True
            return True

        done = False
        while not done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _mask in sel.select(remaining):
                fd = key.fd
                if fd == exited:
                    done = True
                elif fd == stdin_fd:
                    try:
                        pending = pending[os.write(fd, pending[:CHUNK]):]
                    except BlockingIOError:
                        continue
                    except OSError:  # the command closed its input: the rest is dropped, as a pipe would
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(fd)
                        proc.stdin.close()
                elif fd in kept:
                    take(fd)
        clean = self.end_agent_processes()
        code = proc.wait()
        if proc.stdin and not proc.stdin.closed:
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(stdin_fd)
            proc.stdin.close()
        # Every writer is dead now: read what is left in the pipes up to their end.
        drain_until = time.monotonic() + DRAIN_S
        while len(sel.get_map()) > 1 and time.monotonic() < drain_until:
            for key, _mask in sel.select(max(drain_until - time.monotonic(), 0)):
                if key.fd in kept:
                    take(key.fd)
        sel.close()
        os.close(exited)
        proc.stdout.close()
        proc.stderr.close()
        self.reap()
        reply = {"code": None if timed_out else (code if code >= 0 else 128 - code), "timed_out": timed_out,
                 "truncated": truncated, "clean": clean, "duration": time.monotonic() - started}
        if request.get("scan", True):
            reply["changed"], reply["removed"] = self.scan_roots()
        return reply, [bytes(kept[out_fd]), bytes(kept[err_fd])]

    # ---- reset ---------------------------------------------------------------------------------------
    def reset(self, request, blobs):
        """End every process of the agent, then, as the agent (which owns all it made), remove the System V IPC
        objects, empty the scratch folders and the roots, check that all of it is gone, and write the seed:
        `folders` (made 0755) and `files` ([path, mode], their data the blobs). Done in a forked child, no program
        started, unless a folder resists (then `rm -rf`, as the exec path does)."""
        clean = self.end_agent_processes()
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # the agent's side: never returns
            os.close(read_end)
            code = 1
            try:
                os.setgroups([])
                os.setgid(self.uid)
                os.setuid(self.uid)
                problem = housekeep(request["scratch"] + self.roots) or seed(request["folders"], request["files"],
                                                                             blobs)
                if problem:
                    write_all(write_end, problem.encode(errors="replace"))
                else:
                    code = 0
            except BaseException as exc:  # noqa: BLE001 - whatever it is, the parent reports it
                write_all(write_end, f"{type(exc).__name__}: {exc}".encode(errors="replace"))
            finally:
                os._exit(code)
        os.close(write_end)
        problem, timed_out = bytearray(), False
        deadline = time.monotonic() + request["timeout"]
        sel = selectors.DefaultSelector()
        sel.register(read_end, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                timed_out = True
                with contextlib.suppress(OSError):
                    os.kill(child, signal.SIGKILL)
                break
            chunk = os.read(read_end, CHUNK)
            if not chunk:
                break
            problem += chunk[:CHUNK - len(problem)]
        sel.close()
        os.close(read_end)
        code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        clean = self.end_agent_processes() and clean
        self.scan_roots()
        self.unread, self.gone = set(self.signatures), set()
        reply = {"code": None if timed_out else code, "timed_out": timed_out, "clean": clean, "truncated": False}
        return reply, [b"", bytes(problem)]

    # ---- the files -----------------------------------------------------------------------------------
    def walk(self):
        """(path, signature) of every regular file under the roots; links are never followed."""
        stack = list(reversed(self.roots))
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                elif stat.S_ISREG(st.st_mode):
                    yield entry.path, (st.st_ino, st.st_size, st.st_mode, st.st_mtime_ns, st.st_ctime_ns)

    def scan_roots(self):
        now = dict(self.walk())
        before = self.signatures
        changed = [path for path, sig in now.items() if before.get(path) != sig]
        removed = [path for path in before if path not in now]
        self.signatures = now
        self.unread.update(changed)
        self.unread.difference_update(removed)
        self.gone.update(removed)
        self.gone.difference_update(changed)
        return changed, removed

    def read_entry(self, path):
        """(mode, size, sha256, the first `readback` bytes) of a regular file, or None if it is none now."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            digest = hashlib.sha256()
            head = bytearray()
            size = 0
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                if len(head) < self.readback:
                    head += chunk[:self.readback - len(head)]
        return stat.S_IMODE(st.st_mode), size, digest.hexdigest(), bytes(head)

    def files(self, request):
        """The files changed since the host last asked (every file if `full`), and those removed."""
        wanted = set(self.signatures) if request.get("full") else self.unread
        entries, blobs, removed = [], [], sorted(self.gone)
        for path in sorted(wanted):
            entry = self.read_entry(path)
            if entry is None:
                removed.append(path)
                continue
            mode, size, digest, head = entry
            entries.append([path, mode, size, digest])
            blobs.append(head)
        self.unread, self.gone = set(), set()
        return {"files": entries, "removed": removed, "full": bool(request.get("full"))}, blobs


SYSV = ("/proc/sysvipc/msg", "/proc/sysvipc/sem", "/proc/sysvipc/shm")


def sysv_left():
    """Whether the container's IPC namespace holds System V objects (each list has a header line)."""
    for path in SYSV:
        with open(path, "rb") as fh:
            if len(fh.read().splitlines()) > 1:
                return True
    return False


def remove_tree(path):
    """Remove a folder the agent made, opening up what it locked first (its own folders, so it may)."""
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            remove_tree(entry.path)
        else:
            os.unlink(entry.path)
    os.rmdir(path)


def housekeep(folders):
    """Empty `folders` (not the folders themselves) and the System V objects; what is left, said, or None."""
    if sysv_left():
        subprocess.run(["ipcrm", "--all"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    for folder in folders:
        try:
            for entry in os.scandir(folder):
                if entry.is_dir(follow_symlinks=False):
                    remove_tree(entry.path)
                else:
                    os.unlink(entry.path)
        except (OSError, RecursionError):  # too deep or too long a path for this walk: rm copes with any
            subprocess.run(["bash", "-c", 'shopt -s nullglob dotglob; e=("$1"/*); ((${#e[@]})) || exit 0; '
                            'chmod -R u+rwX -- "${e[@]}"; rm -rf -- "${e[@]}"', "empty", folder],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    for folder in folders:
        if os.listdir(folder):
            return f"could not empty {folder}"
    if sysv_left():
        return "could not remove the System V IPC objects"
    return None


def seed(folders, files, blobs):
    """Write the seed as the agent: folders 0755, files with their modes (whatever the umask)."""
    for folder in folders:
        os.mkdir(folder, 0o755)
        os.chmod(folder, 0o755)
    for (path, mode), data in zip(files, blobs, strict=True):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            write_all(fd, data)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    return None


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    channel = Channel()
    config = json.loads(sys.argv[-1])
    # A module the agent could write must never be imported here (a root over the server's own library folders).
    for folder in sys.path:
        for root in config["roots"]:
            if folder == root or folder.startswith(root.rstrip("/") + "/"):
                channel.send({"ready": False, "why": f"the agent's folder {root} holds the server's modules"})
                return
    server = Server(config)
    channel.send({"ready": True, "pid": os.getpid()})
    while True:
        try:
            request, blobs = channel.receive()
        except EOFError:
            server.end_agent_processes()
            return
        op = request.get("op")
        try:
            if op == "run":
                reply, out = server.run(request, blobs)
            elif op == "reset":
                reply, out = server.reset(request, blobs)
            elif op == "files":
                reply, out = server.files(request)
            elif op == "kill":
                reply, out = {"clean": server.end_agent_processes()}, []
            elif op == "ping":
                reply, out = {}, []
            else:
                reply, out = {"error": f"unknown op {op!r}"}, []
        except Exception as exc:  # noqa: BLE001 - reported to the host, which discards the sandbox
            reply, out = {"error": f"{type(exc).__name__}: {exc}"}, []
        channel.send(reply, out)


if __name__ == "__main__":
    main()
