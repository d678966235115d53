"""The docker sandbox's persistent shell server, on the real engine: a command costs no engine call, the agent can
neither reach nor fool the server (signals, its pipes, ptrace, its own kill-all, files rewritten to look untouched,
locked folders), the read-back fetches only what changed and equals the engine's own archive of the roots, a
command past its timeout takes all its processes with it while the server lives on, and a server that dies or
hangs makes the sandbox an error, never a silent result."""

from __future__ import annotations

import io
import time

import pytest

from envs.sandbox import SandboxError, SandboxLimits, SandboxSpec, SandboxUnavailable, docker_sandbox
from envs.sandbox.docker import DockerProvider
from envs.world import FileEntry

pytestmark = pytest.mark.slow
TIMEOUT_S = 3.0
SPEC = SandboxSpec(extra_roots=("/usr/local/bin",), limits=SandboxLimits(timeout_s=TIMEOUT_S))
SEED = {"/workspace/data/a.txt": FileEntry(content="seed\n"),
        "/workspace/data/b.txt": FileEntry(content="other\n"),
        "/usr/local/bin/report-tool": FileEntry(content="#!/bin/sh\necho report\n", mode=0o755)}


@pytest.fixture(scope="module", autouse=True)
def engine(docker_engine):
    return docker_engine


@pytest.fixture
def provider(docker_provider):
    return docker_provider


@pytest.fixture
def sandbox(provider):
    box = provider.acquire(SPEC)
    assert box.persistent, "the base image runs the shell server"
    box.reset(SEED)
    yield box
    provider.release(box)


def server_pid(api, sandbox) -> int:
    """The shell server's pid inside the container, checked there by root (what `docker top` shows are host pids)."""
    pid = sandbox._shell.pid  # noqa: SLF001
    seen = api.exec_start(api.exec_create(sandbox.container.id, ["cat", f"/proc/{pid}/cmdline"], user="0:0")["Id"])
    assert seen.startswith(b"python3\0-I\0-S\0"), seen
    return pid


def as_root(api, sandbox, *argv: str) -> None:
    api.exec_start(api.exec_create(sandbox.container.id, list(argv), user="0:0")["Id"])


def host_processes(api, sandbox) -> list[str]:
    return [row[-1] for row in api.top(sandbox.container.id, ps_args="-o pid,args").get("Processes") or []]


class EngineCalls:
    """Counts the engine calls a sandbox makes (its low-level API client)."""

    def __init__(self, monkeypatch, api) -> None:
        self.calls: list[str] = []
        for name in ("exec_create", "exec_start", "exec_inspect", "get_archive", "put_archive", "inspect_container"):
            original = getattr(api, name)
            monkeypatch.setattr(api, name, self._counting(name, original))

    def _counting(self, name, original):
        def call(*args, **kwargs):
            self.calls.append(name)
            return original(*args, **kwargs)

        return call


# ---- one request per command, no engine call ------------------------------------------------------
def test_commands_and_read_backs_make_no_engine_call(sandbox, monkeypatch):
    sandbox.snapshot_files()
    calls = EngineCalls(monkeypatch, sandbox._api)  # noqa: SLF001 - the sandbox's own client
    for i in range(5):
        ran = sandbox.exec(f"echo {i} >> data/a.txt; cat data/a.txt | wc -l")
        assert ran.stdout == f"{i + 2}\n"
        assert sandbox.snapshot_files()["/workspace/data/a.txt"].content.endswith(f"{i}\n")
    sandbox.write_file("/workspace/new.txt", b"written")
    assert sandbox.read_file("/workspace/new.txt") == b"written"
    assert calls.calls == []


def test_the_read_back_fetches_only_what_changed(sandbox, monkeypatch):
    sandbox.exec("mkdir many && cd many && seq -f 'f%04g' 300 | xargs touch")
    sandbox.snapshot_files()
    shell = sandbox._shell  # noqa: SLF001 - watch what the read-back asks the server for
    replies = []
    original = shell.request

    def watched(header, blobs=(), bound_s=30.0):
        reply = original(header, blobs, bound_s)
        replies.append((header["op"], reply[0]))
        return reply

    monkeypatch.setattr(shell, "request", watched)
    sandbox.exec("echo changed > many/f0007; rm data/b.txt")
    files = sandbox.snapshot_files()
    run, fetched = replies
    assert run[0] == "run" and sorted(run[1]["changed"]) == ["/workspace/many/f0007"]
    assert run[1]["removed"] == ["/workspace/data/b.txt"]
    assert fetched[0] == "files" and [f[0] for f in fetched[1]["files"]] == ["/workspace/many/f0007"]
    assert files["/workspace/many/f0007"].content == "changed\n" and "/workspace/data/b.txt" not in files
    assert len(files) == 300 + len(SEED) - 1
    sandbox.exec("cat many/f0001 >/dev/null")  # reading changes nothing: no fetch at all
    assert sandbox.snapshot_files() == files
    assert [op for op, _ in replies] == ["run", "files", "run"]


# ---- the agent cannot reach or fool the server ------------------------------------------------------
def test_the_agent_cannot_signal_trace_or_feed_the_server(sandbox, provider):
    api = provider.client.api
    pid = server_pid(api, sandbox)
    probe = f"""
kill -9 {pid}; echo "kill $?"
kill -STOP {pid}; echo "stop $?"
echo '{{"op": "files", "full": true}}' > /proc/{pid}/fd/0; echo "stdin $?"
echo forged > /proc/{pid}/fd/1; echo "stdout $?"
ls /proc/{pid}/fd >/dev/null; echo "fds $?"
python3 -c "import ctypes as c; print('ptrace', c.CDLL(None, use_errno=True).ptrace(16, {pid}, 0, 0), c.get_errno())"
grep CapEff /proc/self/status
kill -9 -1; echo survived
"""
    seen = sandbox.exec(probe)
    out = seen.stdout
    for line in ("kill 1", "stop 1", "stdin 1", "stdout 1", "fds 2", "ptrace -1 1", "CapEff:\t0000000000000000"):
        assert line in out, (line, seen.render())
    # Its own kill-all ended the command itself (as in any shell), but not the server: the same one answers.
    assert server_pid(api, sandbox) == pid
    ran = sandbox.exec("echo after; echo x > data/a.txt")
    assert (ran.exit_code, ran.stdout) == (0, "after\n")
    assert sandbox.snapshot_files()["/workspace/data/a.txt"].content == "x\n"


def test_a_rewrite_made_to_look_untouched_is_read_back(sandbox):
    # Same size, same mtime, even the same inode: only ctime (which no agent can set) tells.
    sandbox.snapshot_files()
    sandbox.exec("touch -r data/a.txt /tmp/stamp && printf 'SEED\\n' > data/a.txt && touch -r /tmp/stamp data/a.txt && "
                 "chmod 000 data && echo hidden > /tmp/x")
    files = sandbox.snapshot_files()
    assert files["/workspace/data/a.txt"].content == "SEED\n"  # read back from a folder the agent locked
    assert set(files) == set(SEED)
    # A file swapped for a link to it, and a FIFO where a file was, are no regular files: gone from the world.
    sandbox.exec("chmod 755 data && mv data/a.txt data/real && ln -s real data/a.txt && rm data/b.txt && "
                 "mkfifo data/b.txt")
    files = sandbox.snapshot_files()
    assert "/workspace/data/a.txt" not in files and "/workspace/data/b.txt" not in files
    assert files["/workspace/data/real"].content == "SEED\n"


def test_the_read_back_equals_the_engines_archive(sandbox):
    mess = r"""
mkdir -p deep/er/est odd && head -c 300000 /dev/urandom > deep/er/est/big.bin && printf 'x%.0s' $(seq 5000) > text
touch $'odd/\xff\xfe' $'odd/new\nline' 'odd/sp ace' && printf '\xff\xfe\x00' > odd/binary && ln deep/er/est/big.bin hard
chmod 4750 text && chmod 000 deep/er && ln -s /etc/passwd link && mkfifo fifo && echo t > /usr/local/bin/added
rm data/b.txt
"""
    assert sandbox.exec(mess).exit_code == 0
    served = sandbox.snapshot_files()
    archived = sandbox._archive_snapshot()  # noqa: SLF001 - the old read-back, through the engine's archive API
    assert served == archived
    assert served["/workspace/deep/er/est/big.bin"].truncated and served["/workspace/text"].mode == 0o4750
    assert {"/workspace/hard", "/workspace/odd/\udcff\udcfe", "/usr/local/bin/added"} <= set(served)


def test_reset_empties_trees_too_deep_or_too_long_for_a_walk(sandbox):
    # 1,200 nested folders (deeper than Python's recursion) and a path longer than PATH_MAX, each locked.
    tree = ("import os\n"
            "for name, depth in (('d', 1200), ('n' * 200, 25)):\n"
            "    os.chdir('/workspace')\n"
            "    for _ in range(depth):\n"
            "        os.mkdir(name); os.chdir(name)\n"
            "    open('f', 'w').write('bottom'); os.chmod('.', 0)\n"
            "os.makedirs('/tmp/t/u'); os.chmod('/tmp/t', 0); print('made')\n")
    made = sandbox.exec(f"python3 - <<'PY'\n{tree}PY", timeout_s=30)
    assert made.stdout == "made\n", made.render()
    sandbox.reset(SEED)
    assert set(sandbox.snapshot_files()) == set(SEED)
    assert sandbox.exec("ls -A /workspace /tmp").stdout == "/tmp:\n\n/workspace:\ndata\n"


# ---- every command ends with all its processes; the server lives on ---------------------------------
def test_a_command_past_its_timeout_is_killed_with_all_its_processes(sandbox, provider):
    api = provider.client.api
    pid = server_pid(api, sandbox)
    started = time.monotonic()
    slow = sandbox.exec("sleep 1003 & setsid sleep 1004 & (trap '' TERM HUP; sleep 1005) & "
                        "yes > /dev/null & echo started; sleep 1006", timeout_s=1)
    assert slow.timed_out and slow.exit_code is None and slow.stdout == "started\n"
    assert time.monotonic() - started < 1 + 5
    assert not [p for p in host_processes(api, sandbox) if p.startswith("sleep 100") or p == "yes"]
    flood = sandbox.exec("yes | head -c 1000000")
    assert flood.output_truncated and len(flood.stdout) == SPEC.limits.output_bytes
    assert sandbox.exec("kill -9 $$").exit_code == 137  # killed by a signal: 128 + 9, as bash reports it
    assert server_pid(api, sandbox) == pid
    assert sandbox.exec("echo alive").stdout == "alive\n"


def test_a_dead_server_is_an_error_and_its_sandbox_never_pooled(sandbox, provider):
    api = provider.client.api
    as_root(api, sandbox, "kill", "-9", str(server_pid(api, sandbox)))
    with pytest.raises(SandboxError, match="lost the shell"):
        sandbox.exec("echo hello")
    assert sandbox.broken
    provider.release(sandbox)
    again = provider.acquire(SPEC)
    assert again is not sandbox and again.exec("echo fresh").stdout == "fresh\n"
    provider.release(again)


def test_a_hung_server_is_an_error_within_its_bound(sandbox, provider, monkeypatch):
    monkeypatch.setattr(docker_sandbox, "CLIENT_GRACE_S", 1.0)
    api = provider.client.api
    as_root(api, sandbox, "kill", "-STOP", str(server_pid(api, sandbox)))
    started = time.monotonic()
    with pytest.raises(SandboxError, match="did not answer in time"):
        sandbox.exec("echo hello", timeout_s=1)
    assert time.monotonic() - started < 1 + 1 + 3
    assert sandbox.broken and not sandbox.alive()


# ---- the old path stays, and is chosen plainly ------------------------------------------------------
def test_the_exec_per_command_path_gives_the_same_results(engine):
    old = DockerProvider(shell="exec")
    try:
        box = old.acquire(SPEC)
        assert not box.persistent
        box.reset(SEED)
        ran = box.exec("id -u; echo x > data/new.txt; chmod 000 data")
        assert (ran.exit_code, ran.stdout) == (0, "1000\n")
        files = box.snapshot_files()
        assert set(files) == {*SEED, "/workspace/data/new.txt"}
        assert box.container.attrs["HostConfig"]["CapAdd"] is None  # no capability for a server it does not run
    finally:
        old.shutdown()


def test_an_image_without_python_keeps_to_one_exec_per_command(engine, provider):
    base = provider._image(SandboxSpec())  # noqa: SLF001 - the base image's tag
    tag = f"safety-sandbox-test/no-python:{base.rpartition(':')[2]}"
    dockerfile = f"FROM {base}\nRUN rm -f /usr/bin/python3*\n".encode()
    engine.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, network_mode="none", rm=True)
    box = provider.acquire(SandboxSpec(image=tag, extra_roots=SPEC.extra_roots, limits=SPEC.limits))
    assert not box.persistent
    box.reset(SEED)
    ran = box.exec("command -v python3; echo x > data/new.txt; sleep 100 & echo ran")
    assert (ran.exit_code, ran.stdout) == (0, "ran\n")
    assert box.exec("ps -eo args | grep -c '^sleep 100'").stdout == "0\n"
    assert set(box.snapshot_files()) == {*SEED, "/workspace/data/new.txt"}
    provider.release(box)


def test_no_server_where_the_agent_could_write_its_modules(provider):
    # A root over a folder on the server's module path (python311.zip is one, missing from the image): the server
    # refuses to start and every command is its own exec.
    box = provider.acquire(SandboxSpec(extra_roots=("/usr/lib/python311.zip",), limits=SPEC.limits))
    assert not box.persistent
    box.reset({"/usr/lib/python311.zip/planted.py": FileEntry(content="raise SystemExit")})
    assert box.exec("id -u").stdout == "1000\n"
    provider.release(box)


def test_an_unknown_shell_is_named(monkeypatch):
    monkeypatch.setenv("SAFETY_SANDBOX_DOCKER_SHELL", "turbo")
    with pytest.raises(SandboxUnavailable, match="SAFETY_SANDBOX_DOCKER_SHELL='turbo' is no docker shell"):
        DockerProvider()


def test_the_container_grants_only_the_servers_capabilities(sandbox):
    host_config = sandbox.container.attrs["HostConfig"]
    assert host_config["CapDrop"] == ["ALL"]
    assert sorted(host_config["CapAdd"]) == ["DAC_READ_SEARCH", "KILL", "SETGID", "SETUID"]
    assert "no-new-privileges" in host_config["SecurityOpt"]
    # The agent cannot get them back through a setuid file either.
    seen = sandbox.exec("cp /usr/bin/id ./id && chmod 4755 ./id && ./id -u; "
                        "python3 -c \"import os; os.setuid(0)\" 2>&1 | tail -1")
    assert seen.stdout.splitlines()[0] == "1000" and "PermissionError" in seen.stdout
    assert sandbox.snapshot_files()["/workspace/id"].mode == 0o4755  # the bit is there; nosuid makes it mean nothing
