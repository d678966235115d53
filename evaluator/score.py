"""`python -m evaluator.score <run-dir>`: re-score a run from its trajectories alone.

Re-evaluates every trajectory's checks on its recorded pre/post worlds and trace, rebuilds the
metrics, prints them, and compares them with the run's results.json. Each episode is audited too
(see evaluator.audit): recorded verdicts that differ from the re-scored ones, embedded checks that do
not match their digest or the scenario, and so on are reported per episode. Judges' judgements are
left as recorded (and reported) unless --judges asks to run the judges again.

Exit codes: 0 everything agrees; 1 results.json or some episode differs, or a judgement failed; 2 bad arguments or
an unreadable run (or the run folder is in use, with --write).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from envs.cli_args import OneLineArgumentParser, one_line
from envs.plugins import PluginError
from evaluator.audit import EpisodeAudit, ScenarioLookup, audit_line, rescore
from evaluator.jsonl import TrajectoryFileError, TrajectoryLine, read_trajectory_lines
from evaluator.judges import Judge, judge_names, make_judges
from evaluator.results import build_results
from evaluator.run_lock import RunFolderBusy, RunFolderLock
from evaluator.scoring import judge_errors, run_judges
from records.trajectory import Trajectory

__all__ = ["main", "rescore"]
SHOWN_PER_KIND = 20  # episodes listed before the rest are only counted


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m evaluator.score", description=__doc__.split("\n\n")[0],
                                   epilog="exit codes: 0 all agrees, 1 something differs, 2 bad input")
    parser.add_argument("run_dir", type=Path, help="a run folder (holds trajectories.jsonl)")
    parser.add_argument("--write", action="store_true", help="overwrite results.json with the re-scored metrics")
    parser.add_argument("--judges", nargs="?", const="", default=None, metavar="NAME[,NAME]",
                        help="run judges again (default: those the run used) instead of keeping their judgements")
    args = parser.parse_args(argv)
    path = args.run_dir / "trajectories.jsonl"
    if not path.is_file():
        return _fail(f"{path} not found (is {args.run_dir} a run directory?)")
    try:
        if args.write:  # the run itself may still be writing this folder
            with RunFolderLock(args.run_dir):
                return _score(args.run_dir, path, write=True, judges=args.judges)
        return _score(args.run_dir, path, write=False, judges=args.judges)
    except (TrajectoryFileError, RunFolderBusy, PluginError) as exc:
        return _fail(one_line(exc))
    except OSError as exc:
        return _fail(f"{args.run_dir}: {exc.strerror or exc}")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _score(run_dir: Path, path: Path, write: bool, judges: str | None) -> int:
    scenarios = ScenarioLookup.for_run(run_dir)
    lines = read_trajectory_lines(path)
    rerun = _judges_to_rerun(run_dir, lines, judges) if judges is not None else None  # bad names: before scoring
    audits = [audit_line(path, line, scenarios) for line in lines]
    latest = {a.episode_id: a.rescored for a in audits}  # the last attempt of each episode counts
    if rerun is not None:
        latest = {k: t.model_copy(update={"judgements": run_judges(t, rerun)}) for k, t in latest.items()}
    results = build_results(list(latest.values()))
    print(json.dumps(results, indent=2, sort_keys=True))
    doubtful = _report_episodes(audits) + _report_judgements(list(latest.values()), rerun)
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
              "they record or have failed judgements (above)", file=sys.stderr)
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


def _judges_to_rerun(run_dir: Path, lines: list[TrajectoryLine], spec: str) -> list[Judge]:
    """The judges `--judges` names; with no names, those the run was configured with, else those it recorded."""
    names = judge_names(spec)
    if not names:
        try:
            config = json.loads((run_dir / "config.json").read_text())
        except (OSError, ValueError):
            config = {}
        configured = config.get("judges") if isinstance(config, dict) else None
        names = judge_names(configured) if isinstance(configured, str) else []
        names = names or list(dict.fromkeys(j.judge for line in lines for j in line.trajectory.judgements))
    if not names:
        raise PluginError(f"--judges: the run in {run_dir} used no judges; name them: --judges NAME[,NAME]")
    return make_judges(names)


def _report_judgements(trajectories: list[Trajectory], rerun: list[Judge] | None) -> int:
    """Say whether judgements were kept or re-run, and print each failed one; return how many episodes have one."""
    judged = [t for t in trajectories if t.judgements]
    if rerun is not None:
        print(f"judges re-run: {', '.join(j.name for j in rerun)} on {len(judged)} scored episode(s)",
              file=sys.stderr)
    elif judged:
        names = sorted({j.judge for t in judged for j in t.judgements})
        print(f"judgements of {', '.join(names)} on {len(judged)} episode(s) kept as recorded (--judges re-runs them)",
              file=sys.stderr)
    failed = judge_errors(trajectories)
    for traj, judgement in failed[:SHOWN_PER_KIND]:
        print(f"JUDGE FAILED {traj.episode_id} {judgement.judge}: {judgement.error}", file=sys.stderr)
    if len(failed) > SHOWN_PER_KIND:
        print(f"... and {len(failed) - SHOWN_PER_KIND} more failed judgement(s)", file=sys.stderr)
    return len({traj.episode_id for traj, _ in failed})


if __name__ == "__main__":
    sys.exit(main())
