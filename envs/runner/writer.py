"""The one writer of a run's files. Each episode's line goes to trajectories.jsonl at once (a kill loses nothing
finished); the store gets the same JSON in batches from a thread of its own, so the runner's loop never waits on
the database (a batch of 100 took 100-390 ms inside the loop before). The queue to that thread is bounded: a store
that falls behind slows the run down rather than filling memory."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from envs.config import ConfigError
from evaluator.jsonl import TrajectoryWriter
from evaluator.serialised import SerialisedEpisode

if TYPE_CHECKING:  # the store imports SQLAlchemy; the runner imports it only where a store is opened
    from evaluator.store import TrajectoryStore

STORE_BATCH = 100
FLUSH_AFTER_S = 0.5  # a batch waits at most this long for more episodes
QUEUE_BATCHES = 4  # batches that may wait for the store before `write` blocks
_DONE = None


class StoreWriteFailed(ConfigError):
    """The store refused a batch; the episodes are safe in trajectories.jsonl (a rerun stores them)."""


class RunWriter:
    def __init__(self, jsonl: Path, store: TrajectoryStore, run_id: str, where: str) -> None:
        self._jsonl = TrajectoryWriter(jsonl)
        self._store, self._run_id, self._where = store, run_id, where
        self._queue: queue.Queue[SerialisedEpisode | None] = queue.Queue(maxsize=QUEUE_BATCHES * STORE_BATCH)
        self._failure: str | None = None
        self._thread = threading.Thread(target=self._store_batches, name="store-writer", daemon=True)
        self._thread.start()

    def write(self, episode: SerialisedEpisode) -> None:
        self._jsonl.write_json(episode.json)
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(episode, timeout=FLUSH_AFTER_S)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Close the jsonl and wait until the store holds every episode written (raises if it failed)."""
        self._jsonl.close()
        while self._thread.is_alive():
            try:
                self._queue.put(_DONE, timeout=FLUSH_AFTER_S)
                break
            except queue.Full:
                continue
        self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise StoreWriteFailed(f"{self._where}: cannot write the store: {self._failure}; the finished episodes "
                                   "are in trajectories.jsonl, and a rerun of the same command stores them")

    def _store_batches(self) -> None:
        done = False
        while not done:
            batch = [self._queue.get()]
            deadline = time.monotonic() + FLUSH_AFTER_S
            while len(batch) < STORE_BATCH and batch[-1] is not _DONE:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            done = batch[-1] is _DONE
            episodes = [e for e in batch if e is not _DONE]
            try:
                self._store.add_episodes(self._run_id, episodes)
            except Exception as exc:  # noqa: BLE001 - reported to the runner's thread, which stops the run
                self._failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                return
