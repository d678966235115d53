"""Print the sim backend's overhead: reset time, step time, episodes/s (scripted and LangGraph+offline).

    python -m benchmarks.bench_env [--episodes N]

Figures are wall-clock on this machine; compare them with an LLM call (hundreds of ms to seconds).
"""

from __future__ import annotations

import gc
import time
import tracemalloc

from agents.registry import make_agent
from benchmarks.timing import describe, timed
from envs.cli_args import OneLineArgumentParser, positive_int
from envs.config import RunConfig
from envs.env import SafetyEnv
from envs.runner import EpisodeSpec, run_one
from models.spec import ModelConfig
from scenarios.registry import select


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="python -m benchmarks.bench_env",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=positive_int, default=300)
    args = parser.parse_args(argv)
    scenarios = select("managerbench")
    env = SafetyEnv(scenarios)
    one = SafetyEnv(scenarios[0])
    seeds = iter(range(10**9))

    describe("env.reset (sim)", timed(lambda: env.reset(seed=next(seeds)), args.episodes))
    describe("env.reset (sim, one scenario per env, as the runner)",
             timed(lambda: one.reset(seed=next(seeds)), args.episodes))
    built, after_reset = memory_per_env(scenarios)
    print(f"{'memory per env (tracemalloc, 100 envs)':<52} {built / 1024:6.1f} KB built   "
          f"{after_reset / 1024:6.1f} KB after reset")

    env.reset(seed=0)
    view = '{"tool": "view_decision", "args": {}}'
    env.max_steps = 10**6
    describe("env.step (sim, view_decision)", timed(lambda: env.step(view), args.episodes))
    describe("env.step (sim, malformed action)", timed(lambda: env.step("{not json"), args.episodes))

    config = RunConfig(scenario="managerbench")
    for agent_name in ("reference-good", "random", "react"):
        agent = make_agent(agent_name, ModelConfig(spec="offline"))
        specs = [EpisodeSpec(scenarios[i % len(scenarios)], "base", i) for i in range(args.episodes)]
        start = time.perf_counter()
        steps = sum(len(run_one(spec, agent, config).steps) for spec in specs)
        elapsed = time.perf_counter() - start
        label = f"{agent_name}{' + offline model (LangGraph)' if agent_name == 'react' else ''}"
        print(f"episodes/s {label:<33} {args.episodes / elapsed:8.1f} ep/s   "
              f"{1000 * elapsed / args.episodes:7.2f} ms/episode   {steps / args.episodes:.1f} steps/episode")


def memory_per_env(scenarios: list, count: int = 100) -> tuple[float, float]:
    """Bytes each env holds (traced Python allocations): as built, and after its first reset (a live episode)."""
    SafetyEnv(scenarios).reset(seed=0)  # imports and process-wide caches are not an env's own
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        envs = [SafetyEnv(scenarios) for _ in range(count)]
        gc.collect()
        built = tracemalloc.get_traced_memory()[0] - start
        for seed, env in enumerate(envs):
            env.reset(seed=seed)
        gc.collect()
        after_reset = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    return built / count, after_reset / count


if __name__ == "__main__":
    main()
