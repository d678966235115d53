"""Process workers: the same results as one worker, the same resume and Ctrl-C/SIGTERM behaviour with real signals
on real runs, no worker outliving its run, and a worker killed mid-run recorded as episode errors, never a hang."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from official_data import OFFICIAL_DATA, needs_official

from agents.registry import AGENTS
from agents.scripted import ReferenceAgent
from envs.config import parse_args
from envs.run import main as run_main
from envs.runner import execute, executor_kind
from envs.runner.executors import fork_is_safe
from evaluator.jsonl import read_trajectories
from evaluator.store import TrajectoryStore

REPO = Path(__file__).resolve().parents[1]
OFFICIAL_EPISODES = 2440


# ---- processes, read from /proc ---------------------------------------------------------------------------
def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        for child in children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def workers_of(run_pid: int) -> list[int]:
    """Forked from the run (their command line is the run's) or from its fork server."""
    forked = [c for c in children(run_pid) if cmdline(c) == cmdline(run_pid)]
    servers = [c for c in children(run_pid) if "forkserver" in cmdline(c)]
    return forked + [w for server in servers for w in children(server)]


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited; only its exit status waits to be read)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} (waited {timeout_s} s)")
        time.sleep(0.02)


# ---- runs ---------------------------------------------------------------------------------------------------
def official_args(out: Path, *extra: str) -> list[str]:
    return ["scenario=managerbench-official", f"source={OFFICIAL_DATA}", f"out={out}", "progress=false", *extra]


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "envs.run", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_for_lines(proc: subprocess.Popen, path: Path, at_least: int) -> None:
    def enough() -> bool:
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"run ended (rc {proc.returncode}) before {at_least} lines:\n{err[-2000:]}")
        return count_lines(path) >= at_least

    wait_until(enough, 120, f"no {at_least} lines in {path}")


def by_episode(run_dir: Path) -> dict[str, tuple]:
    """What must not depend on the executor: per episode id, its outcome."""
    rows = [json.loads(line) for line in (run_dir / "trajectories.jsonl").read_text().splitlines()]
    assert len({r["episode_id"] for r in rows}) == len(rows), "an episode written twice"
    return {r["episode_id"]: (r["verdicts"], r["reward"], r["error"], [s["action"] for s in r["steps"]],
                              (r["post_world"] or {}).get("console")) for r in rows}


def results_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def stored_labels(run_dir: Path) -> dict[str, str | None]:
    store = TrajectoryStore(f"sqlite:///{run_dir / 'store.sqlite'}")
    return {r.episode_id: r.label for r in store.episodes(run_dir.resolve().as_posix())}


# ---- the same results -------------------------------------------------------------------------------------
def test_workers_give_the_same_results_as_one_worker(tmp_path: Path):
    args = ["scenario=managerbench", "variant=all", "agent=random", "seed=3", "progress=false"]
    one = execute(parse_args([*args, f"out={tmp_path / 'one'}"]))
    procs = execute(parse_args([*args, f"out={tmp_path / 'procs'}", "workers=2"]))
    threads = execute(parse_args([*args, f"out={tmp_path / 'threads'}", "workers=2", "executor=threads"]))
    # With another thread alive, forking is not safe: the workers come from the fork server, scenarios pickled.
    config = parse_args([*args, f"out={tmp_path / 'served'}", "workers=2"])
    other_thread = threading.Event()
    waiting = threading.Thread(target=other_thread.wait)
    waiting.start()
    try:
        assert not fork_is_safe(config)
        served = execute(config)
    finally:
        other_thread.set()
        waiting.join()
    assert (one.executor, procs.executor, threads.executor, served.executor) == ("in-process", "processes",
                                                                                 "threads", "processes")
    assert one.ran == procs.ran == threads.ran == served.ran == 28
    assert not (one.errors or procs.errors or threads.errors or served.errors)
    expected = by_episode(tmp_path / "one")
    assert len({v[0]["harm"] for v in expected.values()}) == 2, "the random agent should both harm and not"
    for name in ("procs", "threads", "served"):
        assert by_episode(tmp_path / name) == expected, name
        assert results_of(tmp_path / name) == results_of(tmp_path / "one"), name
        assert stored_labels(tmp_path / name) == stored_labels(tmp_path / "one"), name


@pytest.mark.slow
@needs_official
def test_official_set_on_worker_processes_matches_one_worker(tmp_path: Path):
    one = execute(parse_args(official_args(tmp_path / "one", "agent=random", "seed=5", "limit=600")))
    two = execute(parse_args(official_args(tmp_path / "two", "agent=random", "seed=5", "limit=600", "workers=2")))
    assert two.executor == "processes" and one.ran == two.ran == 600
    assert by_episode(tmp_path / "two") == by_episode(tmp_path / "one")
    assert results_of(tmp_path / "two") == results_of(tmp_path / "one")


# ---- which executor --------------------------------------------------------------------------------------
def test_executor_choice(monkeypatch, tmp_path: Path, capsys):
    def kind(*extra: str) -> str:
        return executor_kind(parse_args(["scenario=managerbench", *extra]))

    assert kind("agent=reference-good") == "in-process"
    assert kind("agent=reference-good", "workers=2") == "processes"
    assert kind("agent=react", "workers=2") == "processes"  # the offline model is CPU-bound
    assert kind("agent=react", "model=openai:m", "base_url=http://127.0.0.1:9/v1", "workers=2") == "threads"
    assert kind("agent=reference-good", "workers=2", "executor=threads") == "threads"
    monkeypatch.setattr(AGENTS, "local", {})
    AGENTS.add("here-only", lambda spec: ReferenceAgent("good"))
    assert kind("agent=here-only", "workers=2") == "threads"  # a worker process could not build it
    out = tmp_path / "run"
    assert run_main(["scenario=managerbench", "agent=here-only", "workers=2", "executor=processes", f"out={out}",
                     "progress=false"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "executor=processes: agent 'here-only' is registered in this process only" in err
    assert "executor=threads" in err and not out.exists()
    assert run_main(["scenario=managerbench", "executor=fork", f"out={out}", "progress=false"]) == 2
    assert "executor=fork" in " ".join(capsys.readouterr().err.split())


# ---- stopping ---------------------------------------------------------------------------------------------
@pytest.mark.slow
@needs_official
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_keeps_what_finished_and_leaves_no_worker(tmp_path: Path, sig):
    out = tmp_path / "run"
    path = out / "trajectories.jsonl"
    proc = start_cli(*official_args(out, "agent=random", "workers=2"))
    wait_for_lines(proc, path, at_least=40)
    family = descendants(proc.pid)
    assert len(workers_of(proc.pid)) == 2, "two worker processes"
    started = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"the run did not stop after {sig.name}")
    stopped_in = time.monotonic() - started
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    assert stopped_in < 10, f"stopping took {stopped_in:.1f} s"
    wait_until(lambda: not any(running(p) for p in family), 10, "a worker or the fork server outlived the run")
    kept = read_trajectories(path)
    assert 40 <= len(kept) < OFFICIAL_EPISODES and all(t.finished for t in kept)
    assert len({t.episode_id for t in kept}) == len(kept)
    assert results_of(out)["episodes"] == len(kept)
    assert set(stored_labels(out)) == {t.episode_id for t in kept}  # the store holds every line written
    if sig == signal.SIGINT:  # the same command resumes (still on worker processes) and completes
        rerun = subprocess.run([sys.executable, "-m", "envs.run", *official_args(out, "agent=random", "workers=2")],
                               cwd=REPO, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert f"{OFFICIAL_EPISODES - len(kept)} run now, {len(kept)} resumed" in " ".join(rerun.stderr.split())
        rows = by_episode(out)
        assert len(rows) == OFFICIAL_EPISODES and all(v[2] is None for v in rows.values())
        assert set(stored_labels(out)) == set(rows)
        checked = subprocess.run([sys.executable, "-m", "evaluator.score", str(out)], cwd=REPO, capture_output=True,
                                 text=True, timeout=300)
        assert checked.returncode == 0, checked.stderr[-2000:]


@pytest.mark.slow
@needs_official
def test_a_killed_runner_leaves_no_worker_and_resumes(tmp_path: Path):
    out = tmp_path / "run"
    proc = start_cli(*official_args(out, "agent=random", "workers=2"))
    wait_for_lines(proc, out / "trajectories.jsonl", at_least=20)
    family = descendants(proc.pid)
    assert len(workers_of(proc.pid)) == 2
    proc.kill()
    proc.communicate(timeout=30)
    wait_until(lambda: not any(running(p) for p in family), 15, "a worker outlived its killed run")
    # The killed run resumes: what it finished is kept (and stored now if the store missed it), the rest is played.
    kept = {t.episode_id for t in read_trajectories(out / "trajectories.jsonl", strict=False) if t.finished}
    rerun = subprocess.run([sys.executable, "-m", "envs.run", *official_args(out, "agent=random", "workers=2")],
                           cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{OFFICIAL_EPISODES - len(kept)} run now, {len(kept)} resumed" in " ".join(rerun.stderr.split())
    rows = by_episode(out)
    assert len(rows) == OFFICIAL_EPISODES and set(stored_labels(out)) == set(rows)


# ---- a worker that dies ----------------------------------------------------------------------------------
@pytest.mark.slow
@needs_official
def test_a_worker_killed_mid_run_becomes_episode_errors_and_a_rerun_retries_them(tmp_path: Path):
    out = tmp_path / "run"
    proc = start_cli(*official_args(out, "agent=reference-good", "workers=2"))
    wait_for_lines(proc, out / "trajectories.jsonl", at_least=30)
    victim = workers_of(proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the run hung after a worker was killed")
    err = " ".join(err.split())
    assert proc.returncode == 1, err[-2000:]
    assert "ended in errors" in err and "worker process" in err and "Traceback" not in err
    rows = by_episode(out)
    failed = {i: v[2] for i, v in rows.items() if v[2] is not None}
    assert len(rows) == OFFICIAL_EPISODES, "the run went on after the worker died"
    assert failed and all(e["kind"] == "backend" and "died" in e["message"] for e in failed.values())
    assert len(failed) <= 4 * 32, "only the episodes in flight when the worker died"

    rerun = subprocess.run([sys.executable, "-m", "envs.run", *official_args(out, "agent=reference-good",
                                                                             "workers=2")],
                           cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    rows = by_episode(out)
    assert len(rows) == OFFICIAL_EPISODES and all(v[2] is None for v in rows.values())
    mb = results_of(out)["managerbench"]
    assert mb["harm_avoidance"] == 100 and mb["control_pragmatism"] == 100
    labels = stored_labels(out)  # the store's errored rows were replaced by the finished ones
    assert set(labels) == set(rows) and all(labels[e] is not None for e in failed)


def test_the_runner_does_not_import_the_store_libraries():
    """SQLAlchemy and SQLModel come with the store, where a run opens it, not with `import envs.runner`."""
    probe = ("import sys, envs.runner, envs.runner.worker; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel')))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_ctrl_c_while_the_results_are_built_still_writes_them(tmp_path: Path, monkeypatch):
    """A large run spends seconds building results.json after its last episode; a Ctrl-C then must not lose it."""
    import envs.runner as runner

    build = runner.build_results_from_file

    def interrupted_build(path):
        os.kill(os.getpid(), signal.SIGINT)  # delivered at once to this (the main) thread's handler
        return build(path)

    monkeypatch.setattr(runner, "build_results_from_file", interrupted_build)
    outcome = execute(parse_args(["scenario=managerbench", "agent=reference-good", f"out={tmp_path}"]))
    assert outcome.interrupted and outcome.ran == 14
    assert results_of(tmp_path)["episodes"] == 14 == count_lines(tmp_path / "trajectories.jsonl")


def test_a_pool_that_breaks_between_waits_is_renewed_and_nothing_is_lost(tmp_path: Path, monkeypatch):
    """A worker can die after the runner's last wait: the pool then refuses the next submit itself
    (BrokenProcessPool from submit, not from a future). The chunk is kept for the renewed pool; nothing escapes."""
    from concurrent.futures.process import BrokenProcessPool

    import envs.runner as runner
    from envs.runner.executors import Threads

    class BreaksOnce(Threads):
        refused = renewed = 0

        def submit(self, specs):
            if BreaksOnce.refused < 2:  # the first submit of a run, and one more after the renewal
                BreaksOnce.refused += 1
                raise BrokenProcessPool("a child process terminated abruptly")
            return super().submit(specs)

        def renew(self):
            BreaksOnce.renewed += 1
            self.generation += 1

    monkeypatch.setattr(runner, "Threads", BreaksOnce)
    outcome = execute(parse_args(["scenario=managerbench", "agent=reference-good", "workers=2", "executor=threads",
                                  f"out={tmp_path}"]))
    assert BreaksOnce.refused == 2 and BreaksOnce.renewed == 2
    assert outcome.ran == 14 and not outcome.errors and not outcome.interrupted
    assert results_of(tmp_path)["episodes"] == 14
