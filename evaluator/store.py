"""The trajectory store: SQLModel tables over any SQLAlchemy URL (SQLite by default).

Episodes go in by batches through SQLAlchemy Core: one DELETE of the batch's earlier attempts (a resumed run
replaces its errored episodes) and one executemany INSERT, with no read per row; each row carries the JSON the
jsonl writer produced, so a trajectory is serialised once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Table, Text, UniqueConstraint, delete, insert
from sqlalchemy.engine import Connection
from sqlmodel import Field, Session, SQLModel, create_engine, select

from evaluator.serialised import SerialisedEpisode
from records.trajectory import Trajectory

# Episode ids per DELETE ... IN (...): well under every database's limit on bound parameters.
IDS_PER_DELETE = 500


class RunRecord(SQLModel, table=True):
    __tablename__ = "runs"
    id: str = Field(primary_key=True)
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    config_json: str = Field(sa_column=Column(Text))
    results_json: str | None = Field(default=None, sa_column=Column(Text))


class EpisodeRecord(SQLModel, table=True):
    __tablename__ = "episodes"
    __table_args__ = (UniqueConstraint("run_id", "episode_id"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, foreign_key="runs.id")
    episode_id: str = Field(index=True)
    scenario_id: str = Field(index=True)
    scenario_hash: str
    suite: str = Field(index=True)
    variant: str
    seed: int = Field(sa_column=Column(BigInteger, nullable=False))  # 64-bit on every database, not only SQLite
    agent: str
    model: str | None = None
    label: str | None = None
    harm: bool | None = None
    over_caution: bool | None = None
    refusal: bool | None = None
    reward: float | None = None
    error: str | None = None
    steps: int
    trajectory_json: str = Field(sa_column=Column(Text))


class JudgementRecord(SQLModel, table=True):
    """One judge's judgement of one episode, in a table of its own: never mixed into the rule verdicts."""

    __tablename__ = "judgements"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, foreign_key="runs.id")
    episode_id: str = Field(index=True)
    judge: str = Field(index=True)
    model: str | None = None
    prompt_hash: str | None = None
    rubric_hash: str | None = None
    score: float | None = None
    rationale: str = Field(default="", sa_column=Column(Text))
    error: str | None = Field(default=None, sa_column=Column(Text))
    judged_at: str


class TrajectoryStore:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        SQLModel.metadata.create_all(self.engine)

    def save_run(self, run_id: str, config_json: str, results_json: str | None = None) -> None:
        with Session(self.engine) as session:
            run = session.get(RunRecord, run_id) or RunRecord(id=run_id, config_json=config_json)
            run.config_json = config_json
            run.results_json = results_json
            session.add(run)
            session.commit()

    def add_episodes(self, run_id: str, episodes: Iterable[Trajectory | SerialisedEpisode]) -> None:
        """Insert or replace episodes of a run (a resumed run replaces its earlier errored attempts), with their
        judgements, in one transaction. Given an episode twice, the store keeps the last."""
        latest: dict[str, SerialisedEpisode] = {}
        for episode in episodes:
            row = episode if isinstance(episode, SerialisedEpisode) else SerialisedEpisode.of(episode)
            latest[row.episode_id] = row
        if not latest:
            return
        rows = list(latest.values())
        with self.engine.begin() as connection:
            ids = [row.episode_id for row in rows]
            _delete_episodes(connection, EpisodeRecord.__table__, run_id, ids)
            _delete_episodes(connection, JudgementRecord.__table__, run_id, ids)
            connection.execute(insert(EpisodeRecord.__table__),
                               [{**row.columns, "run_id": run_id, "trajectory_json": row.json} for row in rows])
            judgements = [{**j, "run_id": run_id} for row in rows for j in row.judgements]
            if judgements:
                connection.execute(insert(JudgementRecord.__table__), judgements)

    def episodes(self, run_id: str) -> list[EpisodeRecord]:
        with Session(self.engine) as session:
            return list(session.exec(select(EpisodeRecord).where(EpisodeRecord.run_id == run_id)))

    def judgements(self, run_id: str) -> list[JudgementRecord]:
        with Session(self.engine) as session:
            return list(session.exec(select(JudgementRecord).where(JudgementRecord.run_id == run_id)))

    def episode_ids(self, run_id: str) -> set[str]:
        with Session(self.engine) as session:
            return set(session.exec(select(EpisodeRecord.episode_id).where(EpisodeRecord.run_id == run_id)))

    def trajectories(self, run_id: str) -> list[Trajectory]:
        return [Trajectory.model_validate_json(e.trajectory_json) for e in self.episodes(run_id)]


def _delete_episodes(connection: Connection, table: Table, run_id: str, episode_ids: Sequence[str]) -> None:
    for start in range(0, len(episode_ids), IDS_PER_DELETE):
        chunk = episode_ids[start:start + IDS_PER_DELETE]
        connection.execute(delete(table).where(table.c.run_id == run_id, table.c.episode_id.in_(chunk)))
