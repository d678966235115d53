"""The docker provider: scenarios score the same as elsewhere, a pooled container carries nothing from one
episode to the next, and no container outlives the process that made it (shutdown, Ctrl-C, a killed run)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.scripted import ReferenceAgent
from envs.env import SafetyEnv
from envs.sandbox import SandboxLimits, SandboxSpec, get_provider
from envs.sandbox.docker import LABEL, LABEL_HOST, LABEL_OWNER, DockerProvider
from envs.world import FileEntry, PathEscapeError
from scenarios.registry import select

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
SPEC = SandboxSpec(limits=SandboxLimits(timeout_s=5))
SEED = {"/workspace/data/a.txt": FileEntry(content="seed\n"),
        "/workspace/tools/check.sh": FileEntry(content="echo ok\n", mode=0o555)}


@pytest.fixture(scope="module", autouse=True)
def engine(docker_engine):
    return docker_engine


@pytest.fixture
def provider(docker_provider):
    return docker_provider


def owned_by(client, pid: int) -> tuple[list, list]:
    # The low-level calls answer in one request each; the high-level list inspects every container afterwards
    # and fails when one is removed in between (the very thing these tests wait for).
    filters = {"label": [f"{LABEL}=1", f"{LABEL_OWNER}={pid}"]}
    volumes = client.api.volumes(filters=filters).get("Volumes") or []
    return client.api.containers(all=True, filters=filters), volumes


def processes(api, sandbox) -> set[str]:
    top = api.top(sandbox.container.id, ps_args="-o pid,args")
    return {row[-1] for row in top.get("Processes") or []}


def wait_until(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"{what} within {timeout_s}s")


# ---- scenarios ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("which", "severity"), [("good", 0), ("bad", 4)])
def test_kpi_references_score_on_docker(which, severity):
    scenario = next(s for s in select("kpi") if s.id == "kpi/clinic-wait-times")
    env = SafetyEnv(scenario, backend="docker")
    try:
        env.reset(seed=0)
        ReferenceAgent(which).run(env)
    finally:
        env.close()
    traj = env.trajectory
    assert traj.error is None, traj.error
    assert traj.verdicts.severity == severity, [s.observation for s in traj.steps]


# ---- the sandbox ----------------------------------------------------------------------------------
def test_pooled_container_is_reset_between_episodes(provider):
    first = provider.acquire(SPEC)
    first.reset(SEED)
    out = first.exec("echo secret > data/leak.txt; echo x >> data/a.txt; echo t > /tmp/leak; chmod 000 data; "
                     "sleep 1000 & echo started")
    assert out.exit_code == 0 and "started" in out.stdout
    # A command's background jobs end with it, as in a fresh bwrap run.
    assert "sleep 1000" not in first.exec("ps -eo user,args").stdout
    # A process left some other way (here: started outside a command) is ended by reset. (`docker top`
    # looks from the host: any command in the sandbox would end the process itself.)
    api = provider.client.api
    api.exec_start(api.exec_create(first.container.id, ["sleep", "1001"], user="1000:1000")["Id"], detach=True)
    wait_until(lambda: processes(api, first) & {"sleep 1001"}, 10, "the leftover did not start")
    provider.release(first)

    second = provider.acquire(SPEC)
    assert second is first  # reused from the pool
    second.reset(SEED)
    assert second.snapshot_files() == {
        path: entry.model_copy(update={"size": len(entry.content), "sha256": entry.digest()})
        for path, entry in SEED.items()}
    assert not processes(api, second) & {"sleep 1000", "sleep 1001"}
    listing = second.exec("ls -A /tmp; ls -l tools").stdout
    assert "leak" not in listing
    assert "-r-xr-xr-x 1 agent agent" in listing
    provider.release(second)


def test_commands_keep_the_local_providers_contract(provider):
    sandbox = provider.acquire(SandboxSpec(limits=SandboxLimits(timeout_s=1, output_bytes=1000)))
    sandbox.reset(SEED)
    ran = sandbox.exec("id -u; pwd; echo oops >&2; exit 3")
    assert (ran.exit_code, ran.stdout, ran.stderr) == (3, "1000\n/workspace\n", "oops\n")
    slow = sandbox.exec("sleep 30")
    assert slow.timed_out and slow.exit_code is None and slow.duration_s < 10
    flood = sandbox.exec("yes | head -c 1000000; echo done >&2")
    assert flood.output_truncated and len(flood.stdout) == 1000 and flood.stderr == "done\n"
    assert sandbox.exec("cat", stdin=b"piped").stdout == "piped"
    sandbox.write_file("/workspace/new.txt", b"written")
    assert sandbox.read_file("/workspace/new.txt") == b"written"
    assert sandbox.exec("stat -c %U new.txt").stdout == "agent\n"
    with pytest.raises(PermissionError):
        sandbox.write_file("/workspace/tools/check.sh", b"rewritten")
    sandbox.exec("ln -s /etc/passwd data/link")
    with pytest.raises(PathEscapeError):  # resolved in the container: it leads out of the roots
        sandbox.read_file("/workspace/data/link")
    with pytest.raises(IsADirectoryError):
        sandbox.read_file("/workspace/data")
    with pytest.raises(PathEscapeError):
        sandbox.read_file("/workspace/../etc/passwd")
    with pytest.raises(PathEscapeError):
        sandbox.write_file("/etc/evil", b"x")
    snapshot = sandbox.snapshot_files()
    assert set(snapshot) == {*SEED, "/workspace/new.txt"}  # the link is no regular file
    assert snapshot["/workspace/tools/check.sh"].mode == 0o555
    provider.release(sandbox)


def test_extra_roots_are_restored_exactly(provider):
    spec = SandboxSpec(extra_roots=("/usr/local/bin",), limits=SandboxLimits(timeout_s=5))
    files = {**SEED, "/usr/local/bin/report-tool": FileEntry(content="#!/bin/sh\necho report\n", mode=0o755)}
    sandbox = provider.acquire(spec)
    sandbox.reset(files)
    assert sandbox.exec("report-tool").stdout == "report\n"
    sandbox.exec("echo tampered > /usr/local/bin/report-tool; echo x > /usr/local/bin/added")
    assert {"/usr/local/bin/added", "/usr/local/bin/report-tool"} <= set(sandbox.snapshot_files())
    sandbox.reset(files)
    after = sandbox.snapshot_files()
    assert set(after) == set(files)
    assert after["/usr/local/bin/report-tool"].content == files["/usr/local/bin/report-tool"].content
    provider.release(sandbox)


# ---- no container left behind ---------------------------------------------------------------------
def test_shutdown_removes_every_container_and_volume(provider, engine):
    busy, idle = provider.acquire(SPEC), provider.acquire(SPEC)
    provider.release(idle)
    names = {busy.container.name, idle.container.name}
    provider.shutdown()
    labelled = {"label": f"{LABEL}=1"}
    containers = {name.lstrip("/") for c in engine.api.containers(all=True, filters=labelled) for name in c["Names"]}
    volumes = {v["Name"] for v in engine.api.volumes(filters=labelled).get("Volumes") or []}
    assert not names & containers and not names & volumes


def test_orphans_of_a_dead_process_are_removed(engine):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    shared = get_provider("docker")
    orphan = shared.create(SPEC)
    orphan.container.remove(force=True)  # recreate it as if another (now dead) process had made it
    labels = {LABEL: "1", LABEL_OWNER: str(dead.pid), LABEL_HOST: shared._host}
    name = f"{orphan.container.name}-orphan"
    engine.volumes.create(name=name, labels=labels)
    engine.containers.create(orphan.spec.image, ["sleep", "infinity"], name=name, labels=labels)
    orphan.close()
    DockerProvider().client  # noqa: B018 - connecting reaps orphans
    assert owned_by(engine, dead.pid) == ([], [])


def test_sigint_during_a_run_leaves_no_container(tmp_path, engine):
    proc = subprocess.Popen([sys.executable, "-m", "envs.run", "scenario=kpi", "agent=reference-bad", "backend=docker",
                             f"out={tmp_path / 'run'}", "progress=false"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: owned_by(engine, proc.pid)[0] or proc.poll() is not None, 120,
                   "the run started no container")
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in (0, 130), err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert owned_by(engine, proc.pid) == ([], [])
