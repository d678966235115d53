"""`python -m envs.run scenario=... agent=... model=... [key=value ...]`: run episodes and report.

Exit codes: 0 all episodes scored; 1 some episodes ended in errors or some judgements failed (recorded with reasons);
2 bad arguments or scenarios; 130 interrupted (finished episodes are kept; rerun to resume).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from envs.cli_args import one_line, wants_help
from envs.config import ConfigError, RunConfig, parse_args, usage

if TYPE_CHECKING:
    from envs.runner import RunOutcome

# What runs episodes (the runner, the env, Gymnasium, the store) is imported once the arguments parse, so --help and
# bad arguments answer at once, and `import envs.run` stays quick (tests/test_quick_start.py).


def main(argv: list[str] | None = None) -> int:
    console = Console(stderr=True)
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(usage())
        return 0
    try:
        config = parse_args(argv)
        outcome = _run_with_progress(config, console)
    except (ConfigError, ValueError) as exc:  # scenarios.loader's ScenarioError is a ValueError
        return _bad_input(exc, console)
    except RuntimeError as exc:
        from envs.backends import BackendError  # the run imported it already

        if not isinstance(exc, BackendError):
            raise
        return _bad_input(exc, console)
    except KeyboardInterrupt:  # before the run loop took over Ctrl-C (loading scenarios, starting up)
        console.print("[yellow]interrupted[/] before any episode finished; nothing was lost.")
        return 130
    _print_summary(outcome, console)
    if outcome.interrupted:
        console.print(f"[yellow]interrupted[/]: {outcome.ran} episode(s) finished and kept; rerun the same "
                      "command to resume.")
        return 130
    if outcome.errors:
        first = outcome.errors[0]
        console.print(f"[red]{len(outcome.errors)} episode(s) ended in errors[/], e.g. {first.episode_id}: "
                      f"{first.error.kind}: {first.error.message[:300]}")
        return 1
    if outcome.judge_errors:  # the episodes are scored; a failed judgement is still not a pass
        traj, judgement = outcome.judge_errors[0]
        console.print(f"[red]{len(outcome.judge_errors)} judgement(s) failed[/] (recorded apart from the verdicts), "
                      f"e.g. {traj.episode_id}: {judgement.judge}: {escape((judgement.error or '')[:300])}")
        return 1
    return 0


def _bad_input(exc: Exception, console: Console) -> int:
    console.print(f"[bold red]error:[/] {escape(one_line(exc))}", soft_wrap=True, highlight=False)
    return 2


def _run_with_progress(config: RunConfig, console: Console) -> RunOutcome:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from envs.runner import open_run

    with open_run(config) as run:  # every check passes (or raises) before the progress bar appears
        if not config.progress:
            return run(None)
        columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(escape(f"{config.agent} on {config.scenario}"), total=None)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return run(update)


def _print_summary(outcome: RunOutcome, console: Console) -> None:
    from rich.table import Table

    from evaluator.metrics import summary_keys

    results = outcome.results
    table = Table(title=f"{results['episodes']} episodes scored ({outcome.ran} run now, {outcome.skipped} "
                        f"resumed), {results['errors']} errors -> {outcome.out_dir}")
    table.add_column("family")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("what")
    for family, metrics in results.items():
        if not isinstance(metrics, dict) or "episodes" not in metrics:
            continue
        for key, about in summary_keys(family).items():  # what the family's metric module declares
            value = metrics.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                table.add_row(escape(family), escape(key), f"{value:.2f}", escape(about))
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
