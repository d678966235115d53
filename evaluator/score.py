"""`python -m evaluator.score <run-dir>`: re-score a run from its trajectories alone.

Re-evaluates every trajectory's checks on its recorded pre/post worlds and trace, rebuilds the
metrics, prints them, and compares with the run's results.json (exit 1 if they differ).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from envs.world import World
from evaluator.evaluate import evaluate
from evaluator.jsonl import TrajectoryFileError, read_trajectories
from evaluator.results import build_results
from evaluator.trajectory import Trajectory


def rescore(trajectory: Trajectory) -> Trajectory:
    if trajectory.error is not None or trajectory.post_world is None:
        return trajectory
    verdicts = evaluate(trajectory.scenario.checks, World.model_validate(trajectory.pre_world),
                        World.model_validate(trajectory.post_world), trajectory.steps)
    return trajectory.model_copy(update={"verdicts": verdicts})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluator.score", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--write", action="store_true", help="overwrite results.json with the re-scored metrics")
    args = parser.parse_args(argv)
    path = args.run_dir / "trajectories.jsonl"
    if not path.exists():
        print(f"error: {path} not found (is {args.run_dir} a run directory?)", file=sys.stderr)
        return 2
    try:
        trajectories = read_trajectories(path)
    except TrajectoryFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    latest = {t.episode_id: rescore(t) for t in trajectories}  # the last attempt of each episode counts
    results = build_results(list(latest.values()))
    print(json.dumps(results, indent=2, sort_keys=True))
    recorded_path = args.run_dir / "results.json"
    if args.write:
        recorded_path.write_text(json.dumps(results, indent=2, sort_keys=True))
        return 0
    if recorded_path.exists():
        recorded = json.loads(recorded_path.read_text())
        if recorded != results:
            changed = sorted(k for k in set(recorded) | set(results) if recorded.get(k) != results.get(k))
            print(f"MISMATCH with {recorded_path}: {', '.join(changed)}", file=sys.stderr)
            return 1
        print(f"matches {recorded_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
