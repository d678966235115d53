"""The store keeps up: batched writes with no read per row, one serialisation per trajectory (the jsonl's line is
the stored JSON), earlier attempts replaced; the run's writer stores off the runner's loop and reports a store that
fails; the jsonl is read line by line (resume compaction, results) with the same answers as before."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from agents.scripted import ReferenceAgent
from envs.config import parse_args
from envs.runner import EpisodeSpec, run_one
from envs.runner.writer import RunWriter, StoreWriteFailed
from evaluator.jsonl import TrajectoryWriter, compact_for_resume, read_trajectories, read_trajectory_lines
from evaluator.results import build_results, build_results_from_file
from evaluator.serialised import SerialisedEpisode
from evaluator.store import TrajectoryStore
from records.trajectory import EpisodeError, Trajectory
from records.verdicts import JudgeResult
from scenarios.registry import load_suite

RUN = "/runs/test"


@pytest.fixture(scope="module")
def played() -> list[Trajectory]:
    """Every shipped ManagerBench scenario, played by the good and the bad reference (28 scored trajectories)."""
    config = parse_args(["scenario=managerbench", "out=/tmp/unused"])
    return [run_one(EpisodeSpec(s, "base", seed), ReferenceAgent(kind), config)
            for s in load_suite("managerbench") for seed, kind in ((0, "good"), (1, "bad"))]


def copies(trajectories: list[Trajectory], n: int) -> list[Trajectory]:
    """n distinct episodes (ids made unique) built from played ones."""
    return [trajectories[i % len(trajectories)].model_copy(update={"episode_id": f"copy-{i}"}) for i in range(n)]


def judged(t: Trajectory, judge: str, score: float | None, error: str | None = None) -> Trajectory:
    j = JudgeResult(judge=judge, score=score, error=error, judged_at=datetime.now(UTC).isoformat())
    return t.model_copy(update={"judgements": [*t.judgements, j]})


def errored(t: Trajectory) -> Trajectory:
    return t.model_copy(update={"verdicts": None, "error": EpisodeError(kind="agent", message="boom")})


def statements(store: TrajectoryStore) -> list[str]:
    seen: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda conn, cur, sql, *rest: seen.append(sql.split()[0]))
    return seen


# ---- the store ---------------------------------------------------------------------------------------------
def test_a_batch_is_a_few_statements_and_never_a_read_per_row(tmp_path: Path, played):
    store = TrajectoryStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    store.save_run(RUN, "{}")
    seen = statements(store)
    batch = copies(played, 250)
    batch[3] = judged(batch[3], "canary", 1.0)
    store.add_episodes(RUN, batch)
    sql = [s.upper() for s in seen]
    assert "SELECT" not in sql, sql
    assert sql.count("INSERT") == 2 and sql.count("DELETE") == 2  # episodes and judgements: one of each per table
    assert len(store.episode_ids(RUN)) == 250
    seen.clear()
    store.add_episodes(RUN, copies(played, 1200))  # more ids than one DELETE ... IN takes: a few more DELETEs
    sql = [s.upper() for s in seen]
    assert "SELECT" not in sql and sql.count("INSERT") == 1 and sql.count("DELETE") == 2 * 3
    assert len(store.episode_ids(RUN)) == 1200


def test_a_rerun_replaces_its_earlier_attempt_and_its_judgements(tmp_path: Path, played):
    store = TrajectoryStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    store.save_run(RUN, "{}")
    first, other = played[0], played[1]
    store.add_episodes(RUN, [judged(errored(first), "canary", None, "down"), other])
    store.add_episodes(RUN, [judged(first, "canary", 2.0)])
    records = {r.episode_id: r for r in store.episodes(RUN)}
    assert set(records) == {first.episode_id, other.episode_id}
    assert records[first.episode_id].error is None and records[first.episode_id].label == first.verdicts.label
    (judgement,) = [j for j in store.judgements(RUN) if j.episode_id == first.episode_id]
    assert judgement.score == 2.0 and judgement.error is None
    # Given one episode twice in a batch, the last one counts (no unique-constraint failure).
    store.add_episodes(RUN, [errored(other), other])
    assert {r.episode_id: r.error for r in store.episodes(RUN)}[other.episode_id] is None


def test_the_stored_json_is_the_jsonl_line_serialised_once(tmp_path: Path, played):
    store = TrajectoryStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    store.save_run(RUN, "{}")
    path = tmp_path / "trajectories.jsonl"
    writer = RunWriter(path, store, RUN, "the test store")
    episodes = [SerialisedEpisode.of(t) for t in played]
    for episode in episodes:
        writer.write(episode)
    writer.close()
    lines = path.read_text().splitlines()
    stored = {r.episode_id: r.trajectory_json for r in store.episodes(RUN)}
    assert lines == [e.json for e in episodes]
    assert all(stored[json.loads(line)["episode_id"]] == line for line in lines)
    assert {t.episode_id for t in store.trajectories(RUN)} == {t.episode_id for t in played}
    by_id = {r.episode_id: r for r in store.episodes(RUN)}
    for t in played:  # the columns are read from the trajectory, as before
        rec = by_id[t.episode_id]
        assert (rec.label, rec.harm, rec.steps, rec.agent) == (t.verdicts.label, t.verdicts.harm, len(t.steps),
                                                               t.agent.name)


def test_a_store_that_fails_stops_the_run_with_a_clear_error_and_the_jsonl_keeps_the_episodes(tmp_path, played):
    db = tmp_path / "locked.sqlite"
    store = TrajectoryStore(f"sqlite:///{db}?timeout=0.05")
    store.save_run(RUN, "{}")
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")  # another program holds the database
    path = tmp_path / "trajectories.jsonl"
    writer = RunWriter(path, store, RUN, "db=sqlite:///locked")
    try:
        with pytest.raises(StoreWriteFailed) as failed:
            for episode in [SerialisedEpisode.of(t) for t in copies(played, 2000)]:
                writer.write(episode)
            writer.close()
    finally:
        holder.rollback()
        holder.close()
    message = str(failed.value)
    assert "db=sqlite:///locked: cannot write the store: OperationalError" in message and "locked" in message
    assert "rerun" in message and len(read_trajectories(path)) >= 1


# ---- the jsonl, read a line at a time -------------------------------------------------------------------
def test_resume_compaction_keeps_the_last_finished_line_of_each_episode_as_written(tmp_path: Path, played):
    path = tmp_path / "trajectories.jsonl"
    a, b, c = played[0], played[1], played[2]
    a_again = a.model_copy(update={"duration_s": 42.0})
    lines = [a.model_dump_json(), errored(b).model_dump_json(), a_again.model_dump_json(), "",
             c.model_dump_json(), b.model_dump_json()[:200]]  # a blank line, and a torn last line
    path.write_text("\n".join(lines))
    assert compact_for_resume(path) == {a.episode_id, c.episode_id}
    kept = path.read_text().splitlines()
    assert kept == [lines[2], lines[4]]  # verbatim, in file order, the later attempt of `a`
    # A whole file is left alone: not rewritten.
    before = os.stat(path)
    assert compact_for_resume(path) == {a.episode_id, c.episode_id}
    assert os.stat(path).st_ino == before.st_ino and os.stat(path).st_mtime_ns == before.st_mtime_ns


def test_a_corrupt_middle_line_is_named_not_dropped(tmp_path: Path, played):
    path = tmp_path / "trajectories.jsonl"
    path.write_text(played[0].model_dump_json() + "\n{not json\n" + played[1].model_dump_json() + "\n")
    with pytest.raises(ValueError, match=rf"{path}:2: invalid trajectory \(not JSON"):
        compact_for_resume(path)


def test_unicode_line_separators_in_a_trajectory_do_not_split_its_line(tmp_path: Path, played):
    """An agent can write U+2028 or U+0085 (JSON leaves them unescaped); they are not line ends."""
    t = played[0].model_copy(deep=True)
    t.messages[0]["content"] += " \u2028 injected \u0085 line ends \u2029"
    path = tmp_path / "trajectories.jsonl"
    writer = TrajectoryWriter(path)
    writer.write(t)
    writer.write(played[1])
    writer.close()
    assert [x.episode_id for x in read_trajectories(path)] == [t.episode_id, played[1].episode_id]
    assert read_trajectory_lines(path)[0].raw["messages"][0]["content"] == t.messages[0]["content"]
    assert compact_for_resume(path) == {t.episode_id, played[1].episode_id}


def test_results_from_the_file_equal_results_from_the_full_trajectories(tmp_path: Path, played):
    path = tmp_path / "trajectories.jsonl"
    writer = TrajectoryWriter(path)
    trajectories = [*played, errored(played[0].model_copy(update={"episode_id": "x"}))]
    trajectories[3] = judged(played[3], "canary", 1.0)
    for t in trajectories:
        writer.write(t)
    writer.close()
    full = build_results(read_trajectories(path))
    assert build_results_from_file(path) == full
    assert full["errors"] == 1 and full["judgements"]["canary"]["judged"] == 1
    assert full["managerbench"]["harm_avoidance"] == 50.0  # good and bad reference on every human-harm item


def test_results_from_the_file_drop_a_torn_last_line_and_name_a_bad_one(tmp_path: Path, played):
    path = tmp_path / "trajectories.jsonl"
    whole = "".join(t.model_dump_json() + "\n" for t in played[:4])
    path.write_text(whole + played[4].model_dump_json()[:300])
    assert build_results_from_file(path)["episodes"] == 4
    path.write_text(played[0].model_dump_json() + "\n" + '{"episode_id": 3}\n' + whole)
    with pytest.raises(ValueError, match=rf"{path}:2: invalid trajectory \(field"):
        build_results_from_file(path)
