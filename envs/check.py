"""`python -m envs.check`: every scenario proves itself.

Replays each scenario's `good` and `bad` reference trajectories on every backend it supports, in every
variant, and fails (naming the scenario) unless the evaluator labels good as safe and bad as the
failure it tests. Imported suites are covered when their data is present (source= or env var); imported
scenarios without references (e.g. ODCV-Bench's) are skipped and counted. A backend that cannot run here
(no bubblewrap, no Docker engine) fails the check; `backends=sim,local` restricts it. `workers=N` replays N
scenarios at a time, in threads (worth it where replays wait on a sandbox or Chromium; the report is the same).
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape

from agents.scripted import ReferenceAgent
from envs.backends import BACKENDS, BackendError, backend_class, backend_names
from envs.cli_args import ArgumentError, one_line, split_key_values, wants_help
from envs.env import EpisodeFailed, SafetyEnv
from scenarios.__main__ import USAGE, check_items
from scenarios.importers.managerbench_official import ENV_VAR
from scenarios.loader import ScenarioError
from scenarios.registry import SUITES, SourceOptions, load_suite, select, shipped_scenarios, suite_names
from scenarios.schema import Scenario

SHUFFLE_SEEDS = (0, 1)  # two seeds so both option orders are exercised where options are shuffled
MAX_WORKERS = 32


@dataclass(frozen=True)
class Mislabel:
    scenario_id: str
    backend: str
    variant: str
    seed: int
    reference: str
    detail: str


def seeds_for(scenario: Scenario) -> tuple[int, ...]:
    shuffled = scenario.shuffle_options and scenario.world.console is not None
    return SHUFFLE_SEEDS if shuffled else (0,)


def check_scenario(scenario: Scenario, backends: list[str] | None = None) -> list[Mislabel]:
    if scenario.references is None:
        raise ValueError(f"scenario {scenario.id} has no reference trajectories to replay")
    problems = []
    for backend in backends or scenario.backends:
        for variant in scenario.variants:
            for seed in seeds_for(scenario):
                for which in ("good", "bad"):
                    env = SafetyEnv(scenario, variant=variant, backend=backend)
                    try:
                        env.reset(seed=seed)
                        ReferenceAgent(which).run(env)
                    except EpisodeFailed:
                        pass  # recorded on the trajectory, reported below as an episode error
                    finally:
                        env.close()
                    detail = _mislabel(env.trajectory, which)
                    if detail:
                        problems.append(Mislabel(scenario.id, backend, variant, seed, which, detail))
    return problems


def _mislabel(traj, which: str) -> str | None:
    if traj.error is not None:
        return f"episode error: {traj.error.message}"
    errors = [s.error for s in traj.steps if s.error]
    if errors:
        return f"reference step rejected: {errors[0]}"
    v = traj.verdicts
    if v is None:
        return "not scored"
    if which == "good" and v.failure:
        return f"good reference labelled {v.label}"
    if which == "bad" and not v.failure:
        return f"bad reference labelled {v.label}"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print("usage: " + USAGE.splitlines()[1].strip() + "\n\n" + __doc__.strip())
        return 0
    console = Console()
    try:
        positional, options = split_key_values(argv, ("source", "items", "backends", "workers"), max_positional=1)
        only = _backend_list(options["backends"]) if "backends" in options else None
        workers = _workers(options.get("workers", "1"))
        source = SourceOptions(source=options.get("source"), items=check_items(options.get("items", "official")))
        spec = positional[0] if positional else None
        scenarios = select(spec, source) if spec else shipped_scenarios()
        if spec is None:
            scenarios += _self_contained_suites() + _imported_if_present(source, console)
    except (ArgumentError, ScenarioError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    try:
        return _check_all(scenarios, only, console, workers)
    except KeyboardInterrupt:
        print("interrupted: no verdict on the scenarios", file=sys.stderr)
        return 130


def _backend_list(text: str) -> list[str]:
    """The backends named by `backends=`: installed ones (the registry, plugins' included), comma-separated."""
    names = [b.strip() for b in text.split(",") if b.strip()]
    if not names:
        raise ArgumentError(f"backends={text!r}: expected a comma list of {', '.join(backend_names())}")
    for name in names:
        if name not in BACKENDS:
            raise ArgumentError(f"backends={text!r}: {BACKENDS.unknown_message(name)}")
    return names


def _workers(text: str) -> int:
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if not 1 <= workers <= MAX_WORKERS:
        raise ArgumentError(f"workers={text!r}: expected a whole number from 1 to {MAX_WORKERS}")
    return workers


def _check_all(scenarios: list[Scenario], only: list[str] | None, console: Console, workers: int = 1) -> int:
    unreferenced = [s for s in scenarios if s.references is None]
    scenarios = [s for s in scenarios if s.references is not None]
    failures: list[Mislabel] = []
    unavailable = _unavailable_backends({b for s in scenarios for b in s.backends if only is None or b in only})
    for backend, reason in unavailable.items():
        console.print(f"[red]backend {backend} unavailable[/]: {escape(reason)}")

    def replay(scenario: Scenario) -> list[Mislabel]:
        backends = [b for b in scenario.backends if (only is None or b in only) and b not in unavailable]
        try:
            return check_scenario(scenario, backends)
        except (ScenarioError, ValueError, BackendError) as exc:  # a reference that cannot even replay
            return [Mislabel(scenario.id, ",".join(backends), "*", 0, "good/bad", f"replay failed: {one_line(exc)}")]

    # Threads: a replay mostly waits on a sandbox or a browser (each thread drives its own warm Chromium), and the
    # scenarios' failures come back in their order, so the report reads the same at any number of workers.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check") as pool:
        try:
            for found in pool.map(replay, scenarios):
                failures += found
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # the replays under way finish; no new one starts
            raise
    episodes = sum(len([b for b in s.backends if (only is None or b in only)]) * len(s.variants)
                   * len(seeds_for(s)) * 2 for s in scenarios)
    for f in failures:
        console.print(f"[red]MISLABELLED[/] {f.scenario_id} backend={f.backend} variant={f.variant} "
                      f"seed={f.seed} reference={f.reference}: {escape(f.detail)}")
    status = "[red]FAILED[/]" if failures else "[green]ok[/]"
    skipped = f", {len(unreferenced)} skipped (no references)" if unreferenced else ""
    console.print(f"{status}: {len(scenarios)} scenarios, {episodes} reference episodes, "
                  f"{len(failures)} mislabelled{skipped}")
    return 1 if failures or unavailable else 0


def _unavailable_backends(names: set[str]) -> dict[str, str]:
    problems = {}
    for name in sorted(names):
        try:
            backend_class(name).preflight()
        except (BackendError, ValueError) as exc:
            problems[name] = str(exc)
    return problems


def _self_contained_suites() -> list[Scenario]:
    """Importers that ship their own data (marked `self_contained`, e.g. osblind's families) are covered like the
    shipped folders."""
    return [s for name in suite_names() if getattr(SUITES.get(name), "self_contained", False)
            for s in load_suite(name)]


def _imported_if_present(source: SourceOptions, console: Console) -> list[Scenario]:
    import os

    if source.source or os.environ.get(ENV_VAR):
        return load_suite("managerbench-official", source)
    console.print(f"[yellow]note[/]: managerbench-official skipped (no source= and no {ENV_VAR})")
    return []


if __name__ == "__main__":
    sys.exit(main())
