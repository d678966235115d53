"""Print what a shell sandbox costs per episode and per command, for the docker provider's two shells (before:
one `docker exec` per command and an archive read-back; after: the persistent shell server) and the local one.

    eval "$(bash sandbox_images/engine.sh)"   # the docker provider needs the engine
    python -m benchmarks.bench_sandboxes [--pooled 30] [--fresh 10] [--commands 30] [--kpi-runs 1] [--no-kpi]

Per episode: docker from the warm pool (acquire + reset + release), docker with a fresh container each time
(create + start + reset + remove, i.e. `docker run`), local (acquire + reset + close). Per command: an
`exec("true")` round trip, the read-back after it (nothing changed), and a bash step as an agent's costs (a
command that appends to a file, then the read-back of the world). The seed is the KPI clinic scenario's work dir.
Then the KPI suite with the bad reference agent, its 40 episodes played in this process (the sandbox's share),
and through the CLI (`python -m envs.run scenario=kpi agent=reference-bad backend=docker`, start-up included), on
each docker shell in turn ($SAFETY_SANDBOX_DOCKER_SHELL for the CLI).
Figures are wall-clock medians on this machine; the load average is printed with them.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.timing import describe, timed
from envs.cli_args import OneLineArgumentParser, positive_int
from envs.sandbox import SandboxSpec, get_provider
from envs.sandbox.base import replace_provider
from envs.sandbox.docker import SHELL_ENV, SHELLS, DockerProvider
from envs.world import FileEntry
from scenarios.registry import select

SPEC = SandboxSpec()
REPO = Path(__file__).resolve().parents[1]
KPI_ARGS = ["scenario=kpi", "agent=reference-bad", "backend=docker", "progress=false"]


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def docker_figures(shell: str, files: dict[str, FileEntry], args) -> dict[str, float]:
    """Medians (ms) of one docker shell, each printed as it is measured."""
    docker = DockerProvider(shell=shell)  # type: ignore[arg-type]
    try:
        docker.check()
        docker.release(docker.acquire(SPEC))  # warm the pool (and build the base image if needed)

        def pooled_episode() -> None:
            sandbox = docker.acquire(SPEC)
            sandbox.reset(files)
            docker.release(sandbox)

        def fresh_episode() -> None:
            sandbox = docker.create(SPEC)
            sandbox.reset(files)
            sandbox.close()

        figures = {}

        def measure(name: str, fn: Callable[[], object], repeat: int) -> None:
            samples = timed(fn, repeat)
            describe(f"[{shell}] {name}", samples, width=58)
            figures[name] = median_ms(samples)

        measure("docker episode, warm pool (acquire+reset+release)", pooled_episode, args.pooled)
        measure("docker episode, fresh container (create..remove)", fresh_episode, args.fresh)
        sandbox = docker.acquire(SPEC)
        sandbox.reset(files)
        sandbox.snapshot_files()
        measure("docker exec('true')", lambda: sandbox.exec("true"), args.commands)
        measure("docker snapshot_files, nothing changed", sandbox.snapshot_files, args.commands)

        def bash_step() -> None:  # what a step that changes a file costs, the world read back after it
            sandbox.exec("echo visit >> data/visits.csv")
            sandbox.snapshot_files()

        measure("docker bash step (exec + read-back, one file changed)", bash_step, args.commands)
        docker.release(sandbox)
        return figures
    finally:
        docker.shutdown()


def kpi_episodes(shell: str) -> float:
    """Seconds to play the KPI suite's 40 episodes in this process (bad reference agent, one warm container): the
    sandbox's share of the suite, without the CLI's start-up."""
    from agents.scripted import ReferenceAgent
    from envs.env import SafetyEnv

    provider = DockerProvider(shell=shell)  # type: ignore[arg-type]
    previous = replace_provider("docker", provider)
    try:
        suite = select("kpi")
        warm = SafetyEnv(suite[0], backend="docker")
        warm.reset(seed=0)
        warm.close()
        started = time.perf_counter()
        for scenario in suite:
            for variant in scenario.default_variants:
                env = SafetyEnv(scenario, variant=variant, backend="docker")
                env.reset(seed=0)
                ReferenceAgent("bad").run(env)
                env.close()
                if env.trajectory.error is not None:
                    raise SystemExit(f"{scenario.id} ({variant}) on the {shell} shell: {env.trajectory.error}")
        elapsed = time.perf_counter() - started
    finally:
        provider.shutdown()
        if previous is not None:
            replace_provider("docker", previous)
    print(f"[{shell}] KPI suite on docker, 40 episodes in process: {elapsed:6.2f} s   ({load()})")
    return elapsed


def kpi_walls(runs: int) -> dict[str, float]:
    """Median wall seconds of the KPI suite through the CLI on each docker shell, the shells taking turns (so a
    busy spell of the machine weighs on both alike), a fresh out dir each run."""
    walls: dict[str, list[float]] = {shell: [] for shell in SHELLS}
    for _ in range(runs):
        for shell in SHELLS:
            with tempfile.TemporaryDirectory(prefix="bench-kpi-") as out:
                started = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "envs.run", *KPI_ARGS, f"out={out}/run"], cwd=REPO,
                                      env={**os.environ, SHELL_ENV: shell}, capture_output=True, text=True)
                walls[shell].append(time.perf_counter() - started)
            if done.returncode != 0:
                raise SystemExit(f"the KPI run on the {shell} shell failed ({done.returncode}):\n{done.stderr[-2000:]}")
            print(f"[{shell}] KPI suite on docker, CLI wall (40 episodes): {walls[shell][-1]:6.2f} s   ({load()})")
    return {shell: statistics.median(samples) for shell, samples in walls.items()}


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="python -m benchmarks.bench_sandboxes",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--pooled", type=positive_int, default=30)
    parser.add_argument("--fresh", type=positive_int, default=10)
    parser.add_argument("--commands", type=positive_int, default=30)
    parser.add_argument("--kpi-runs", type=positive_int, default=1)
    parser.add_argument("--no-kpi", action="store_true", help="skip the KPI suite runs")
    args = parser.parse_args(argv)
    files = next(s for s in select("kpi") if s.id == "kpi/clinic-wait-times").world.files.files
    print(f"start: {load()}")

    figures = {shell: docker_figures(shell, files, args) for shell in SHELLS}

    local = get_provider("local")
    local.check()

    def local_episode() -> None:
        sandbox = local.acquire(SPEC)
        sandbox.reset(files)
        local.release(sandbox)

    describe("[local] episode (acquire+reset+close)", timed(local_episode, args.pooled), width=58)
    sandbox = local.acquire(SPEC)
    sandbox.reset(files)
    describe("[local] exec('true')", timed(lambda: sandbox.exec("true"), args.commands), width=58)
    describe("[local] snapshot_files (KPI work dir)", timed(sandbox.snapshot_files, args.commands), width=58)
    local.release(sandbox)

    in_process: dict[str, list[float]] = {shell: [] for shell in SHELLS}
    if not args.no_kpi:
        for _ in range(args.kpi_runs):
            for shell in SHELLS:
                in_process[shell].append(kpi_episodes(shell))
    walls = {} if args.no_kpi else kpi_walls(args.kpi_runs)

    before, after = figures["exec"], figures["persistent"]
    print(f"\nmedians, before (exec per command) -> after (persistent shell); {load()}")
    for name in after:
        ratio = f"{before[name] / after[name]:5.1f}x" if after[name] >= 0.01 else "no engine call"
        print(f"  {name:<58} {before[name]:8.2f} -> {after[name]:7.2f} ms   ({ratio})")
    pooled, fresh = after["docker episode, warm pool (acquire+reset+release)"], \
        after["docker episode, fresh container (create..remove)"]
    print(f"  pooled episode vs a fresh container, after: {fresh / pooled:.1f}x faster")
    if walls:
        played = {shell: statistics.median(samples) for shell, samples in in_process.items()}
        print(f"  KPI suite, 40 episodes in process, median: {played['exec']:.2f} -> {played['persistent']:.2f} s "
              f"({played['exec'] / played['persistent']:.1f}x)")
        print(f"  KPI suite CLI wall, median: {walls['exec']:.2f} -> {walls['persistent']:.2f} s "
              f"({walls['exec'] / walls['persistent']:.1f}x)")


if __name__ == "__main__":
    main()
