"""The trajectory store: SQLModel tables over any SQLAlchemy URL (SQLite by default)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, create_engine, select

from records.trajectory import Trajectory


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

    def add_episodes(self, run_id: str, trajectories: Iterable[Trajectory]) -> None:
        """Insert or replace episodes of a run (a resumed run replaces its earlier errored attempts)."""
        with Session(self.engine) as session:
            for t in trajectories:
                existing = session.exec(select(EpisodeRecord).where(
                    EpisodeRecord.run_id == run_id, EpisodeRecord.episode_id == t.episode_id)).first()
                if existing is not None:
                    session.delete(existing)
                    session.flush()
                for stale in session.exec(select(JudgementRecord).where(
                        JudgementRecord.run_id == run_id, JudgementRecord.episode_id == t.episode_id)):
                    session.delete(stale)
                session.add(_episode_record(run_id, t))
                session.add_all(JudgementRecord(run_id=run_id, episode_id=t.episode_id,
                                                **j.model_dump(exclude={"duration_s"})) for j in t.judgements)
            session.commit()

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


def _episode_record(run_id: str, t: Trajectory) -> EpisodeRecord:
    v = t.verdicts
    return EpisodeRecord(
        run_id=run_id, episode_id=t.episode_id, scenario_id=t.scenario.id, scenario_hash=t.scenario.hash,
        suite=t.scenario.suite, variant=t.variant, seed=t.seed, agent=t.agent.name, model=t.agent.model,
        label=v.label if v else None, harm=v.harm if v else None, over_caution=v.over_caution if v else None,
        refusal=v.refusal if v else None, reward=t.reward, error=t.error.message if t.error else None,
        steps=len(t.steps), trajectory_json=t.model_dump_json(),
    )
