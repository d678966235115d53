"""`python -m evaluator.score <run-dir>`: re-score a run from its trajectories alone.

Re-evaluates every trajectory's checks on its recorded pre/post worlds and trace, rebuilds the
metrics, prints them, and compares them with the run's results.json. Each episode is audited too
(see evaluator.audit): recorded verdicts that differ from the re-scored ones, embedded checks that do
not match their digest or the scenario, and so on are reported per episode.

Exit codes: 0 everything agrees; 1 results.json or some episode differs; 2 bad arguments or an unreadable
run (or the run folder is in use, with --write).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from envs.cli_args import OneLineArgumentParser, one_line
from evaluator.audit import EpisodeAudit, ScenarioLookup, audit_line, rescore
from evaluator.jsonl import TrajectoryFileError, read_trajectory_lines
from evaluator.results import build_results
from evaluator.run_lock import RunFolderBusy, RunFolderLock

__all__ = ["main", "rescore"]
SHOWN_PER_KIND = 20  # episodes listed before the rest are only counted


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m evaluator.score", description=__doc__.split("\n\n")[0],
                                   epilog="exit codes: 0 all agrees, 1 something differs, 2 bad input")
    parser.add_argument("run_dir", type=Path, help="a run folder (holds trajectories.jsonl)")
    parser.add_argument("--write", action="store_true", help="overwrite results.json with the re-scored metrics")
    args = parser.parse_args(argv)
    path = args.run_dir / "trajectories.jsonl"
    if not path.is_file():
        return _fail(f"{path} not found (is {args.run_dir} a run directory?)")
    try:
        if args.write:  # the run itself may still be writing this folder
            with RunFolderLock(args.run_dir):
                return _score(args.run_dir, path, write=True)
        return _score(args.run_dir, path, write=False)
    except (TrajectoryFileError, RunFolderBusy) as exc:
        return _fail(one_line(exc))
    except OSError as exc:
        return _fail(f"{args.run_dir}: {exc.strerror or exc}")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _score(run_dir: Path, path: Path, write: bool) -> int:
    scenarios = ScenarioLookup.for_run(run_dir)
    audits = [audit_line(path, line, scenarios) for line in read_trajectory_lines(path)]
    latest = {a.episode_id: a.rescored for a in audits}  # the last attempt of each episode counts
    results = build_results(list(latest.values()))
    print(json.dumps(results, indent=2, sort_keys=True))
    doubtful = _report_episodes(audits)
    recorded_path = run_dir / "results.json"
    if write:
        recorded_path.write_text(json.dumps(results, indent=2, sort_keys=True))
        print(f"wrote {recorded_path}", file=sys.stderr)
        return 1 if doubtful else 0
    if not recorded_path.exists():
        print(f"no {recorded_path} to compare with", file=sys.stderr)
        return 1 if doubtful else 0
    try:
        recorded = json.loads(recorded_path.read_text())
    except ValueError as exc:
        print(f"MISMATCH: {recorded_path} is not JSON ({exc})", file=sys.stderr)
        return 1
    if not isinstance(recorded, dict) or recorded != results:
        keys = set(recorded) | set(results) if isinstance(recorded, dict) else set(results)
        changed = sorted(k for k in keys if not isinstance(recorded, dict) or recorded.get(k) != results.get(k))
        print(f"MISMATCH with {recorded_path}: {', '.join(changed)}", file=sys.stderr)
        return 1
    if doubtful:
        print(f"{recorded_path} matches the re-scored metrics, but {doubtful} episode(s) differ from what "
              "they record (above)", file=sys.stderr)
        return 1
    print(f"matches {recorded_path}", file=sys.stderr)
    return 0


def _report_episodes(audits: list[EpisodeAudit]) -> int:
    """Print each doubtful episode (file line, id, what differs) and a summary; return how many."""
    doubtful = [a for a in audits if a.problems]
    for audit in doubtful[:SHOWN_PER_KIND]:
        print(f"DIFFERS line {audit.line} {audit.episode_id}: {'; '.join(audit.problems)}", file=sys.stderr)
    if len(doubtful) > SHOWN_PER_KIND:
        print(f"... and {len(doubtful) - SHOWN_PER_KIND} more episode(s) that differ", file=sys.stderr)
    compared = sum(a.compared_with_scenario for a in audits)
    print(f"{len(audits)} trajectories audited: {len(doubtful)} differ; {compared} compared with their scenario "
          f"files, {len(audits) - compared} only with their embedded checks (scenario not loadable here)",
          file=sys.stderr)
    return len(doubtful)


if __name__ == "__main__":
    sys.exit(main())
